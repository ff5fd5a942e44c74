"""Network probes: can we open a TCP connection, finish a TLS handshake, and which
certificate does the server show. No request is ever sent. `Check` is one line of what
such a check found (`check-config --connect` prints them, a sink type's `check` returns
them)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from pvewatch.net.tls import fingerprint_of

Status = Literal["ok", "warn", "fail", "hint"]


@dataclass(frozen=True, slots=True)
class Check:
    """`ok`, `warn` (works, but something is missing) or `fail` (will not work); a `hint`
    tells what to do about the check above it."""

    status: Status
    what: str  # tls, auth, version, visible, connect, ...
    message: str


@dataclass(frozen=True, slots=True)
class Reached:
    fingerprint: str | None  # SHA-256 of the server certificate (TLS only)


class ProbeError(Exception):
    """Connecting or the handshake failed; the message says which and why."""


def host_port(url: str) -> tuple[str, int, bool]:
    """(host, port, tls) of an http(s) URL; ValueError when it is not one."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http(s) URL")
    tls = parts.scheme == "https"
    return parts.hostname, parts.port or (443 if tls else 80), tls


async def reach(
    host: str, port: int, *, tls: ssl.SSLContext | None, timeout_secs: float
) -> Reached:
    """Connect (and shake hands with `tls`), then close; ProbeError when that fails."""
    where = f"{host}:{port}"
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(
                host, port, ssl=tls, server_hostname=host if tls is not None else None
            ),
            timeout_secs,
        )
    except TimeoutError:
        raise ProbeError(f"{where}: no answer within {timeout_secs:g} s") from None
    except ssl.SSLCertVerificationError as exc:
        raise ProbeError(f"{where}: TLS certificate not trusted: {exc.verify_message}") from None
    except ssl.SSLError as exc:
        raise ProbeError(f"{where}: TLS handshake failed: {exc.reason or exc}") from None
    except OSError as exc:
        raise ProbeError(f"{where}: cannot connect: {exc.strerror or exc}") from None
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        return Reached(fingerprint_of(der) if der else None)
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
