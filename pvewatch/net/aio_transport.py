"""An httpx transport that sends through aiohttp: the sinks keep httpx's client, models,
errors and respx tests, and their requests go out through aiohttp's connection pool and C
HTTP parser. httpx's own HTTP/1.1 stack (h11, anyio, httpcore's pool) cost about 60 % of a
webhook delivery; through this transport a delivery takes about half the CPU
(bench/RESULTS.md, `bench.delivery_loop --client httpx|aiohttp-transport`).

The transport only moves bytes, as httpcore's pool does under httpx: httpx still builds
the request (headers, cookies, the body) and reads the answer (content decoding, the
stream), so nothing aiohttp would add is used: no redirects, no decompression, no cookie
jar, no proxy from the environment. aiohttp's errors become httpx's, with the original
as their cause (`http_reason` in the webhook sink reads both); their texts are not
copied, since aiohttp's may quote the URL, which can hold a receiver's token.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Iterator

import aiohttp
import httpx
import yarl

KEEPALIVE_SECS = 5.0  # httpx's keep-alive expiry: an idle connection is closed after it
MAX_CONNECTIONS = 100  # httpx's default pool size
_SET_BY_AIOHTTP = frozenset({"content-length", "transfer-encoding"})  # from the bytes sent


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests with one aiohttp session, made at the first request (aiohttp
    needs the running loop) and closed by `aclose`."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        self._session: aiohttp.ClientSession | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        headers = [(k, v) for k, v in request.headers.multi_items() if k not in _SET_BY_AIOHTTP]
        timeout = request.extensions.get("timeout", {})
        with _as_httpx_errors():
            answer = await self._open().request(
                request.method,
                yarl.URL(str(request.url), encoded=True),  # exactly as httpx encoded it
                headers=headers,
                data=body or None,
                allow_redirects=False,
                auto_decompress=False,
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=timeout.get("connect"), sock_read=timeout.get("read")
                ),
            )
        return httpx.Response(
            status_code=answer.status,
            headers=answer.raw_headers,
            stream=_Body(answer),
            request=request,
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (answer.reason or "").encode("latin-1", "replace"),
            },
        )

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                ssl=self._context, limit=MAX_CONNECTIONS, keepalive_timeout=KEEPALIVE_SECS
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),  # httpx's client keeps the cookies
                skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent"),
                trust_env=False,
            )
        return self._session

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


class _Body(httpx.AsyncByteStream):
    """The answer's body as aiohttp reads it. Closing an answer read to its end gives the
    connection back to the pool; one closed early closes the connection."""

    def __init__(self, answer: aiohttp.ClientResponse) -> None:
        self._answer = answer

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors():
            async for chunk in self._answer.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        self._answer.release()


@contextlib.contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except aiohttp.ClientConnectorCertificateError as exc:  # the ssl module's own error
        raise httpx.ConnectError(type(exc).__name__) from exc.certificate_error
    except aiohttp.ClientError as exc:
        raise _httpx_error(exc)(type(exc).__name__) from exc
    except TimeoutError as exc:  # a socket read or connect deadline inside aiohttp
        raise httpx.ReadTimeout(type(exc).__name__) from exc


def _httpx_error(exc: aiohttp.ClientError) -> type[httpx.TransportError]:
    """The httpx error that says what went wrong as httpcore would have said it."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout
    if isinstance(exc, aiohttp.ClientConnectorError):  # DNS, refused, TLS handshake
        return httpx.ConnectError
    if isinstance(exc, aiohttp.ClientOSError | aiohttp.ClientConnectionResetError):
        return httpx.ReadError  # reset or broken while sending or reading
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return httpx.UnsupportedProtocol
    # The connection closed before a whole answer, or the answer was not HTTP.
    return httpx.RemoteProtocolError
