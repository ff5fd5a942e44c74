"""TLS for outbound connections (the PVE API, webhook receivers, `check-config --connect`):
the ssl context of a `TlsConfig`, and SHA-256 fingerprint pinning in the handshake.

PVE ships a self-signed certificate, so an operator either trusts a CA bundle
(`ca_file`), pins the certificate's fingerprint (`fingerprints`, several for rotation) or,
only when written, turns verification off. A pin replaces CA and hostname checks.

The pin is checked right after the TLS handshake and before the connection is handed to
HTTP, so a server with the wrong certificate never receives a request (nor the token).
That check lives in a network backend for httpcore (`PinningBackend`); `TlsTransport` is
the small httpx transport that runs an httpcore pool on top of it.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import ssl
import typing
from collections.abc import AsyncIterator, Iterable, Iterator

import httpcore
import httpx

from pvewatch.config.types import TlsConfig
from pvewatch.errors import ConfigError

_HEX64 = re.compile(r"[0-9A-F]{64}")


class PinMismatch(httpcore.ConnectError):
    """The server's certificate matches none of the pinned fingerprints."""


def normalize_fingerprint(text: str) -> str:
    """ "ab:cd:…" / "ABCD…" → "AB:CD:…" (as PVE shows it); ValueError if not SHA-256."""
    digits = text.strip().replace(":", "").upper()
    if not _HEX64.fullmatch(digits):
        raise ValueError(f"not a SHA-256 fingerprint (64 hex digits): {text!r}")
    return ":".join(digits[i : i + 2] for i in range(0, 64, 2))


def fingerprint_of(der: bytes) -> str:
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, 64, 2))


def build_ssl_context(tls: TlsConfig) -> ssl.SSLContext:
    """The client context for `tls`. OSError/ssl.SSLError if `ca_file` cannot be loaded."""
    if tls.fingerprints or not tls.verify:
        # The pin (checked by PinningBackend) is the whole verification; without a pin
        # and with verify off there is none, which the client warns about.
        return unverified_context()
    if tls.ca_file is not None:
        return ssl.create_default_context(cafile=str(tls.ca_file))
    return ssl.create_default_context()


def unverified_context() -> ssl.SSLContext:
    """Accepts any certificate: for a pin checked after the handshake, `verify: false`, or
    reading the certificate a server shows."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def build_transport(cluster: str, tls: TlsConfig) -> TlsTransport:
    """The transport for `tls`; ConfigError (naming the cluster) if it cannot be built."""
    where = f"cluster {cluster!r}: tls"
    try:
        pins = tuple(normalize_fingerprint(p) for p in tls.fingerprints)
    except ValueError as exc:
        raise ConfigError([f"{where}.fingerprints: {exc}"]) from None
    try:
        context = build_ssl_context(tls)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError([f"{where}.ca_file: cannot load {tls.ca_file}: {exc}"]) from None
    return TlsTransport(context, pins)


class PinningBackend(httpcore.AsyncNetworkBackend):
    """Opens connections through `inner` and refuses TLS peers whose certificate is not
    pinned, before any HTTP byte is written."""

    def __init__(self, pins: Iterable[str], inner: httpcore.AsyncNetworkBackend) -> None:
        self._pins = frozenset(normalize_fingerprint(p) for p in pins)
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return _PinnedStream(stream, self._pins, f"{host}:{port}")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.UnsupportedProtocol("the PVE API is reached over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _PinnedStream(httpcore.AsyncNetworkStream):
    def __init__(
        self, stream: httpcore.AsyncNetworkStream, pins: frozenset[str], where: str
    ) -> None:
        self._stream = stream
        self._pins = pins
        self._where = where

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        tls_stream = await self._stream.start_tls(ssl_context, server_hostname, timeout)
        ssl_object = tls_stream.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        seen = fingerprint_of(der) if der else "none"
        if seen not in self._pins:
            await tls_stream.aclose()
            expected = ", ".join(sorted(self._pins))
            raise PinMismatch(
                f"TLS certificate of {self._where} does not match the pinned fingerprint:"
                f" expected {expected}, seen {seen}"
            )
        return tls_stream


class TlsTransport(httpx.AsyncBaseTransport):
    """An httpx transport over an httpcore pool that uses `ssl_context` and, when `pins`
    are given, refuses unpinned servers during the handshake. httpcore errors come out
    as the httpx error of the same name, so the client maps only httpx errors."""

    def __init__(self, ssl_context: ssl.SSLContext, pins: Iterable[str] = ()) -> None:
        pins = tuple(pins)
        backend = PinningBackend(pins, httpcore.AnyIOBackend()) if pins else None
        # Idle connections are dropped after 5 s (as httpx does) rather than reused
        # after pveproxy may have closed them.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            network_backend=backend,
            max_connections=4,
            keepalive_expiry=5.0,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors():
            response = await self._pool.handle_async_request(core_request)
        assert isinstance(response.stream, typing.AsyncIterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: typing.AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for chunk in self._stream:
                yield chunk

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            await close()


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    """httpx names its transport errors like httpcore does (ConnectError, ReadTimeout…),
    so the nearest httpcore class of an error gives the httpx error to raise. Anything
    else (a bug, a cancellation) passes through unchanged."""
    try:
        yield
    except Exception as exc:
        for cls in type(exc).__mro__:
            if not cls.__module__.startswith("httpcore"):
                continue
            target = getattr(httpx, cls.__name__, None)
            if isinstance(target, type) and issubclass(target, httpx.TransportError):
                raise target(str(exc)) from exc
        raise
