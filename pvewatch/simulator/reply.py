"""What the simulator answers, before it is written to a socket: status, reason phrase
(PVE puts its error text there), body, and the request facts the answer depends on.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

GZIP_MIN_BYTES = 1024  # pve-http-server compresses only bodies above this
BAD_PARAMS = "Parameter verification failed.\n"
NOT_IN_SCHEMA = (
    "property is not defined in schema and the schema does not allow additional properties"
)


@dataclass(slots=True)
class Request:
    method: str
    path: str  # decoded, without the query
    query: dict[str, list[str]]
    body: bytes = b""
    content_type: str = ""
    cookie: str | None = None
    authorization: str | None = None
    csrf: str | None = None
    accept_gzip: bool = False

    def params(self) -> dict[str, str]:
        """POST parameters from a form or JSON body, as PVE accepts both."""
        if self.content_type.startswith("application/json"):
            try:
                decoded = json.loads(self.body or b"{}")
            except ValueError:
                return {}
            if not isinstance(decoded, dict):
                return {}
            return {str(k): str(v) for k, v in decoded.items()}
        form = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[-1] for k, v in form.items()}


@dataclass(slots=True)
class Reply:
    status: int
    reason: str
    body: bytes | None = None  # None: no body and no Content-Type (PVE's auth/proxy errors)
    gzipped: bytes | None = None  # a ready compressed body (cached with `body`)
    delay_secs: float = 0.0  # wait before answering, outside every lock
    reset: bool = False  # drop the connection without answering
    content_type: str = "application/json;charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)


def encode(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def ok(data: Any, **extra: Any) -> Reply:
    return Reply(200, "OK", encode({"data": data, **extra}))


def handler_error(status: int, message: str, errors: dict[str, str] | None = None) -> Reply:
    """An error raised by an API handler: the first line as reason, JSON with message."""
    payload: dict[str, Any] = {"data": None, "message": message}
    if errors:
        payload["errors"] = errors
    return Reply(status, message.splitlines()[0] if message else "", encode(payload))


def bare(status: int, reason: str, delay_secs: float = 0.0) -> Reply:
    """An error from before any handler runs: reason phrase only, empty body."""
    return Reply(status, reason, None, delay_secs=delay_secs)


def compress(body: bytes) -> bytes:
    return gzip.compress(body, compresslevel=5, mtime=0)


def bad_params(errors: dict[str, str]) -> Reply:
    """400 `Parameter verification failed.` with what is wrong about each parameter."""
    return handler_error(400, BAD_PARAMS, errors)


def unknown_params(query: dict[str, list[str]], allowed: set[str]) -> Reply | None:
    """400 for query parameters the schema does not know; `_dc` is dropped silently."""
    unknown = sorted(set(query) - allowed - {"_dc"})
    return bad_params(dict.fromkeys(unknown, NOT_IN_SCHEMA)) if unknown else None


def last_param(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def unreachable(node: str, online: bool | None) -> Reply | None:
    """What pveproxy answers when proxying to `node` fails (`online` None: no such node)."""
    if online is None:
        message = f"hostname lookup '{node}' failed - failed to get address info for: "
        return handler_error(500, f"{message}{node}: Name or service not known\n")
    return None if online else bare(595, "No route to host")
