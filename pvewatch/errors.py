"""The error tree of pvewatch. Every error pvewatch raises on purpose is one of these:

    PvewatchError
    ├── ConfigError              the config file is invalid (lists every problem)
    ├── SourceError              a poll of the PVE API failed; never "an empty cluster"
    │   ├── SourceUnreachable    network, TLS, 5xx, 595/596
    │   │   └── SourceTimeout    no complete answer within timeout_secs
    │   ├── SourceAuthError      401, 403 (with the missing privilege when PVE says it)
    │   └── SourceBadResponse    not JSON, no `data`, wrong types, over max_response_bytes
    ├── StoreError               the state store cannot be read or written
    └── SinkError                one delivery attempt failed; `retryable` says if retrying can help
        └── SinkGone             the receiver says the endpoint is gone (HTTP 410): disable the sink

Foreign exceptions (httpx, ssl, sqlite3, ...) are translated into these at the module
boundary that owns the library; nothing from a layer below leaks upward. Messages never
contain secrets.
"""

from __future__ import annotations


class PvewatchError(Exception):
    """Base class of every error pvewatch raises on purpose."""


class ConfigError(PvewatchError):
    """The configuration is invalid. `problems` holds one "key.path: what is wrong" each."""

    def __init__(self, problems: list[str], source: str = "config") -> None:
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s)\n{lines}")


class SourceError(PvewatchError):
    """A request to the PVE API failed. `kind` is a short, secret-free error class."""

    kind = "error"

    def __init__(self, message: str, *, endpoint: str | None = None) -> None:
        self.endpoint = endpoint
        super().__init__(f"{endpoint}: {message}" if endpoint else message)


class SourceUnreachable(SourceError):
    kind = "unreachable"


class SourceTimeout(SourceUnreachable):
    kind = "timeout"


class SourceAuthError(SourceError):
    kind = "auth"


class SourceBadResponse(SourceError):
    kind = "bad_response"


class StoreError(PvewatchError):
    """The state store failed (disk full, read-only, locked, corrupt, newer schema)."""


class SinkError(PvewatchError):
    """One delivery attempt failed. `retryable` is False when retrying cannot help."""

    def __init__(
        self, message: str, *, retryable: bool, retry_after_secs: float | None = None
    ) -> None:
        self.retryable = retryable
        self.retry_after_secs = retry_after_secs
        super().__init__(message)


class SinkGone(SinkError):
    """The receiver says the endpoint is gone for good (HTTP 410): delivery disables the
    sink and keeps its events queued until pvewatch restarts or reloads its config."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)
