"""watch.yaml → frozen dataclasses. Pure: reads the file and the environment it is given.

`load_config(path, env)` validates everything at once and raises one `ConfigError` that
lists every problem with its key path (`clusters[0].tls.fingerprint: ...`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pvewatch.secret import Secret

DEFAULT_CONFIG_PATH = Path("/etc/pvewatch/watch.yaml")


@dataclass(frozen=True, slots=True)
class TlsConfig:
    verify: bool = True
    ca_file: Path | None = None
    # SHA-256 fingerprints of accepted server certificates (upper-case hex with colons).
    # A pin replaces CA checks; several pins allow rotation.
    fingerprints: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    name: str
    endpoints: tuple[str, ...]
    token: Secret | None = None  # "USER@REALM!ID=SECRET"
    username: str | None = None
    password: Secret | None = None
    tls: TlsConfig = field(default_factory=TlsConfig)
    interval_secs: float = 10.0
    timeout_secs: float = 10.0
    source_failure_threshold: int = 3


@dataclass(frozen=True, slots=True)
class StoreConfig:
    path: Path = Path("/var/lib/pvewatch/state.db")
    retention_days: int = 30


@dataclass(frozen=True, slots=True)
class HttpConfig:
    listen: str = "127.0.0.1:9886"


@dataclass(frozen=True, slots=True)
class SinkConfig:
    """One sink: `type` picks the implementation, `options` are its own keys, validated
    by that sink's table entry."""

    name: str
    type: str
    options: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Config:
    clusters: tuple[ClusterConfig, ...]
    store: StoreConfig = field(default_factory=StoreConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    sinks: tuple[SinkConfig, ...] = ()
