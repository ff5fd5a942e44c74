"""The validated config: frozen dataclasses, built only by `pvewatch.config.load.load_config`
(or directly by code that knows its values are valid, such as the demo)."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from pvewatch.config.checks import CheckConfig
from pvewatch.config.logging import LogConfig
from pvewatch.config.rules import RulesConfig
from pvewatch.routing import SinkFilter
from pvewatch.secret import Secret

DEFAULT_STORE_PATH = Path("/var/lib/pvewatch/state.db")
DEFAULT_LISTEN = "127.0.0.1:9886"


@dataclass(frozen=True, slots=True)
class TlsConfig:
    verify: bool = True
    ca_file: Path | None = None
    # SHA-256 fingerprints of accepted server certificates (upper-case hex with colons).
    # A pin replaces CA checks; several pins allow rotation.
    fingerprints: tuple[str, ...] = ()

    @property
    def mode(self) -> str:
        """One of "pinned", "ca_file", "system", "insecure"."""
        if not self.verify:
            return "insecure"
        if self.fingerprints:
            return "pinned"
        return "ca_file" if self.ca_file else "system"


# Ten times and more the largest answer seen: /cluster/resources of a simulated cluster of
# 50,000 guests on 50 nodes is 16.8 MB (3.1 MB gzipped).
DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class NotificationsConfig:
    """What PVE's (or PBS's) webhook target sends to `POST /notify/<name>`."""

    token: Secret  # PVE sends `Authorization: Bearer <token>`


@dataclass(frozen=True, slots=True)
class BackupServerConfig:
    """A Proxmox Backup Server: only its notifications, for now."""

    name: str
    notifications: NotificationsConfig


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    name: str
    endpoints: tuple[str, ...]
    token: Secret | None = None  # "USER@REALM!ID=SECRET"
    username: str | None = None
    password: Secret | None = None
    tls: TlsConfig = field(default_factory=TlsConfig)
    interval_secs: float = 10.0
    timeout_secs: float = 10.0  # one request, answer included, to one endpoint
    source_failure_threshold: int = 3
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES  # decoded (after gzip)
    # The health checks beside the poll (pvewatch.config.checks). A config file without
    # `checks:` gets every check; a config built in code, none unless it names them.
    checks: tuple[CheckConfig, ...] = ()
    notifications: NotificationsConfig | None = None  # None: no POST /notify/<name>


@dataclass(frozen=True, slots=True)
class PostgresConfig:
    """`store: {type: postgres, ...}`: a libpq connection string or URL (`dsn`, a secret:
    it may carry the password) and/or its parts; the parts win over the dsn."""

    dsn: Secret | None = None
    host: str | None = None
    port: int | None = None
    dbname: str | None = None
    user: str | None = None
    password: Secret | None = None
    # This replica's name in `pvewatch status`, the logs and PostgreSQL's
    # application_name; None: hostname:pid.
    replica_id: str | None = None
    # How often a replica renews its heartbeat and tries to take clusters nobody leads:
    # the takeover time after a replica dies is about this plus one poll interval.
    leader_check_secs: float = 2.0

    def where(self) -> str:
        """postgresql://HOST:PORT/DBNAME without user or password, for messages."""
        parts = dsn_parts(self.dsn.reveal()) if self.dsn else {}
        host = self.host or parts.get("host") or "localhost"
        port = self.port or parts.get("port") or 5432
        dbname = self.dbname or parts.get("dbname") or self.user or parts.get("user")
        return f"postgresql://{host}:{port}/{dbname or 'postgres'}"


def dsn_parts(dsn: str) -> dict[str, str]:
    """host, port, dbname and user of a postgresql:// URL or a `key=value ...` string
    (never the password); what cannot be read is left out."""
    if "://" not in dsn:
        pairs = (item.partition("=") for item in dsn.split())
        return {k: v.strip("'") for k, _, v in pairs if k in ("host", "port", "dbname", "user")}
    try:
        url = urlsplit(dsn)
        found = {"host": url.hostname, "port": str(url.port or ""), "user": url.username}
    except ValueError:
        return {}
    found["dbname"] = url.path.lstrip("/")
    return {k: v for k, v in found.items() if v}


@dataclass(frozen=True, slots=True)
class StoreConfig:
    type: str = "sqlite"  # "sqlite" | "postgres"
    path: Path = DEFAULT_STORE_PATH
    retention_days: int = 30
    postgres: PostgresConfig | None = None  # set when type is postgres


@dataclass(frozen=True, slots=True)
class WebTlsConfig:
    """The listener's `tls_server_config` (Prometheus exporter-toolkit web config keys)."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    # NoClientCert | VerifyClientCertIfGiven | RequireAndVerifyClientCert
    client_auth_type: str = "NoClientCert"
    min_version: str = "TLS12"  # TLS10 | TLS11 | TLS12 | TLS13
    max_version: str | None = None


@dataclass(frozen=True, slots=True)
class HealthCheckConfig:
    """`http.health_check`: how `pvewatch health` (the image's HEALTHCHECK) gets past the
    listener's basic auth and client-certificate check. The listener itself ignores it."""

    user: str | None = None
    password: Secret | None = None  # the plaintext password of `user`
    cert_file: Path | None = None  # a client certificate, when the listener requires one
    key_file: Path | None = None


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """The /metrics, /healthz and /readyz listener; `listen=None` runs none."""

    listen: str | None = DEFAULT_LISTEN
    tls: WebTlsConfig | None = None
    # user → bcrypt hash; a Secret so that not even the hash is ever printed.
    basic_auth_users: Mapping[str, Secret] = field(default_factory=dict)
    health_check: HealthCheckConfig = field(default_factory=HealthCheckConfig)

    def host_port(self) -> tuple[str, int]:
        """`("127.0.0.1", 9886)`; an IPv6 host comes without brackets."""
        parsed = split_host_port(self.listen or "")
        if parsed is None:
            raise ValueError(f"http.listen: not HOST:PORT: {self.listen!r}")
        return parsed


@dataclass(frozen=True, slots=True)
class RetryConfig:
    """A sink's `retry:` (pvewatch.config.delivery): exponential backoff from initial_secs
    (x5 per attempt, jittered) up to max_secs between attempts; a delivery is dead after
    max_attempts (None: no limit) or max_age_secs after it was queued."""

    initial_secs: float = 1.0
    max_secs: float = 3600.0
    max_attempts: int | None = None
    max_age_secs: float = 86400.0


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """The framework-owned delivery keys of every sink (pvewatch.config.delivery).
    None: the default for the sink (it depends on its type and format)."""

    retry: RetryConfig = field(default_factory=RetryConfig)
    concurrency: int | None = None
    max_per_minute: int | None = None
    group_wait_secs: float | None = None


class SinkOptions:
    """The base of every sink type's options: a frozen dataclass of the sink's own keys,
    defined in the sink's module and read once by its row's `parse`
    (`pvewatch.sinks.base.SinkType`), so that no caller narrows them again."""

    __slots__ = ()

    def summary(self) -> dict[str, object]:
        """The options as `check-config` shows them (`Secret`s show no value): every
        field, in order."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(cast(Any, self))}


@dataclass(frozen=True, slots=True)
class SinkConfig:
    """One sink: `type` names its row in the table of sink types, `options` are its own
    keys as that row's `parse` read them (defaults filled in, paths resolved)."""

    name: str
    type: str
    options: SinkOptions
    # Framework-owned keys, for every type (read by pvewatch.config.routing, applied by
    # pvewatch.routing): which events the sink receives (None: all), and whether it gets
    # the events that resolve a problem.
    filter: SinkFilter | None = None
    send_resolved: bool = True
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)


@dataclass(frozen=True, slots=True)
class Config:
    clusters: tuple[ClusterConfig, ...]
    store: StoreConfig = field(default_factory=StoreConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    sinks: tuple[SinkConfig, ...] = ()
    # The rule sections (expect, maintenance, rules, thresholds): pvewatch.config.rules.
    rules: RulesConfig = field(default_factory=RulesConfig)
    log: LogConfig = field(default_factory=LogConfig)
    backup_servers: tuple[BackupServerConfig, ...] = ()
    # Valid but risky settings ("verify: false", plain http), each "key.path: why".
    warnings: tuple[str, ...] = ()


def split_host_port(value: str) -> tuple[str, int] | None:
    """ "HOST:PORT" or "[v6]:PORT" → (host, port), or None when malformed."""
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return None
    else:
        host, sep, port = value.rpartition(":")
        if not re.fullmatch(r"[A-Za-z0-9._-]+", host):
            return None
    if not sep or not re.fullmatch(r"[0-9]{1,5}", port) or int(port) > 65535:
        return None
    return host, int(port)
