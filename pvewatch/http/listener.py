"""The listener: one socket serving the route table (`pvewatch.http.routes`) over HTTP/1.1.

aiohttp's low-level server (imported here only) parses requests, with its limits on the
request line, header size and header count; `pvewatch.http.gate` in front of it caps
connections, bounds each request in time and in bytes, and does TLS. Auth is decided on
the head alone, before a body is read.

It runs on a thread of its own with its own event loop, not on the daemon's: a blocked
daemon loop cannot hide from /healthz (which reads the loop's heartbeat, and says so),
and a poll that keeps the daemon's loop busy does not delay scrapes, nor a scrape a poll.
Rendering /metrics and checking bcrypt passwords run on one worker thread beside it, so
probes and the deadlines of other connections are served while they run.

Answers: 200 or 503 for the probes (with a JSON body saying which check fails), 401 with
`WWW-Authenticate` and nothing else for a wrong or missing password, 404 for other paths,
405 for other methods; large answers gzipped when asked; HEAD as GET without the body.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import gzip
import logging
import socket
import ssl
import threading
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from pvewatch.config.types import HttpConfig, WebTlsConfig
from pvewatch.errors import ConfigError
from pvewatch.http.auth import BasicAuth
from pvewatch.http.gate import Gatekeeper, Limits
from pvewatch.http.routes import Answer, Asked, Route, find, not_found, standard_routes
from pvewatch.observability.metrics import Metrics
from pvewatch.observability.probes import STALE_AFTER_SECS, Heartbeat, Readiness

BACKLOG = 128  # connections the kernel holds before accept; more are refused by it
MAX_HEADERS = 64
MAX_LINE_BYTES = 8190  # the request line, and each header
_CHUNK = 64 * 1024  # an answer is written in pieces, so a slow reader holds no copy of it
_DRAIN_FACTOR = 4  # a body up to this many times a route's limit is read before its 413
_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}


class Listener:
    """Serves the routes of one `HttpConfig` (whose `listen` must be set)."""

    def __init__(
        self,
        config: HttpConfig,
        *,
        metrics: Metrics,
        readiness: Readiness,
        heartbeat: Heartbeat,
        logger: logging.Logger | None = None,
        stale_after_secs: float = STALE_AFTER_SECS,
        routes: Sequence[Route] = (),
        limits: Limits | None = None,
    ) -> None:
        """`routes` come before the standard ones (/metrics, /healthz, /readyz)."""
        self._config = config
        self._log = logger or logging.getLogger("pvewatch.http")
        standard = standard_routes(metrics, readiness, heartbeat, stale_after_secs)
        self._routes = (*routes, *standard)
        # As logged: the standard paths first ("serving /metrics, ..."), then the others.
        self._paths = [r.path for r in (*standard, *routes)]
        self._auth = BasicAuth(config.basic_auth_users)
        self._limits = limits or Limits()
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._keeper: Gatekeeper | None = None
        self._worker = concurrent.futures.ThreadPoolExecutor(1, "pvewatch-http-worker")

    @property
    def url(self) -> str:
        """Where it listens, e.g. `https://127.0.0.1:9886` (the real port when 0 was asked)."""
        if self._sock is None:
            raise RuntimeError("the listener is not started")
        host, port = self._sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        return f"{'https' if self._config.tls else 'http'}://{shown}:{port}"

    @property
    def open_connections(self) -> int:
        return 0 if self._keeper is None else self._keeper.open

    def start(self) -> None:
        """Bind and serve on a thread. Raises ConfigError naming http.listen when the
        address cannot be used (in use, not local, no permission)."""
        tls = None if self._config.tls is None else server_tls_context(self._config.tls)
        self._sock = _bind(self._config)
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="pvewatch-http", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(self._sock, tls), loop).result(timeout=30)
        *others, last = self._paths
        served = f"{', '.join(others)} and {last}" if others else last
        self._log.info("serving %s on %s", served, self.url)

    def reconfigure(self, config: HttpConfig) -> None:
        """Take the TLS files and users of `config` (same `listen`) without closing the
        socket, so a reload does not make scrapes and probes fail: the connections that
        come next use them. Raises ConfigError when the certificate cannot be loaded."""
        if self._keeper is None:
            raise RuntimeError("the listener is not started")
        try:
            tls = None if config.tls is None else server_tls_context(config.tls)
        except (OSError, ssl.SSLError) as e:
            problem = f"http.tls_server_config: cannot load the certificate: {e}"
            raise ConfigError([problem], source="http listener") from None
        self._auth = BasicAuth(config.basic_auth_users)
        self._keeper.tls = tls
        self._config = config

    def close(self) -> None:
        """Stop serving and release the port. Safe to call twice."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), loop).result(timeout=10)
        except (TimeoutError, concurrent.futures.TimeoutError):
            self._log.warning("http: the listener did not stop within 10 s")
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        if not loop.is_running():
            loop.close()
        self._worker.shutdown(wait=False, cancel_futures=True)
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    # -- on the listener's loop ---------------------------------------------------------

    async def _serve(self, sock: socket.socket, tls: ssl.SSLContext | None) -> None:
        http = web.Server(
            self._handle,
            logger=_Quiet(self._log, {}),
            access_log=None,
            max_line_size=MAX_LINE_BYTES,
            max_field_size=MAX_LINE_BYTES,
            max_headers=MAX_HEADERS,
            keepalive_timeout=self._limits.request_secs,
            lingering_time=1.0,
            handler_cancellation=True,
        )
        self._keeper = Gatekeeper(http, tls=tls, limits=self._limits, logger=self._log)
        self._keeper.serve(sock)

    async def _stop(self) -> None:
        if self._keeper is not None:
            self._keeper.stop()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        gate = self._keeper.gate_of(request.protocol) if self._keeper else None
        if gate is None:  # a request of a connection dropped meanwhile: nobody to answer
            return web.Response(status=503)
        deadline = gate.busy()
        try:
            return await self._answer(request, deadline)
        except Exception:  # a bug of ours: a 500 for this request, the listener lives on
            self._log.exception("http: answering %s failed", request.path)
            return await _send(request, Answer(500, b"internal error\n"))
        finally:
            gate.idle()

    async def _answer(self, request: web.BaseRequest, deadline: float) -> web.StreamResponse:
        found = find(self._routes, request.path)
        route = found[0] if found else None
        if route is not None and request.method not in route.methods:
            allow = ", ".join(sorted(route.methods))
            refused = Answer(405, b"method not allowed\n", headers={"Allow": allow})
            return await _send(request, refused, close=True)
        query = {name: request.query[name] for name in request.query}
        params = found[1] if found else {}
        asked = Asked(request.method, request.path, params, request.headers, query=query)
        auth = (route.auth if route else None) or self._auth
        if route is not None and route.auth_of is not None:
            auth = route.auth_of(asked.params)
        allowed = auth.quick(request.headers.get("Authorization"))
        if allowed is None:
            loop = asyncio.get_running_loop()
            header = request.headers.get("Authorization")
            allowed = await loop.run_in_executor(self._worker, auth.check, header)
        if not allowed:
            denied = Answer(401, b"unauthorized\n", headers={"WWW-Authenticate": auth.challenge})
            return await _send(request, denied, close=request.body_exists)
        if route is None:
            return await _send(request, not_found(self._routes))
        if route.max_body_bytes:
            body = await _read_body(request, route.max_body_bytes, deadline)
            if isinstance(body, Answer):
                return await _send(request, body, close=True)
            asked = dataclasses.replace(asked, body=body)
        gzip_ok = "gzip" in request.headers.get("Accept-Encoding", "")
        if route.blocking:
            loop = asyncio.get_running_loop()
            answer = await loop.run_in_executor(self._worker, _answered, route, asked, gzip_ok)
        else:
            answer = _answered(route, asked, gzip_ok)
        return await _send(request, answer)


def _answered(route: Route, asked: Asked, gzip_ok: bool) -> Answer:
    answer = route.answer(asked)
    if not gzip_ok or len(answer.body) <= 1024:
        return answer
    headers = {**answer.headers, "Content-Encoding": "gzip"}
    return Answer(answer.status, gzip.compress(answer.body, 1), answer.content_type, headers)


async def _read_body(request: web.BaseRequest, limit: int, deadline: float) -> bytes | Answer:
    """At most `limit` bytes of body, in by the request's deadline; else the answer.

    A body over the limit is read on and dropped, up to `_DRAIN_FACTOR` times the limit
    and within the deadline, before the 413: closing a socket with unread bytes resets
    it, and the client would see the reset instead of the answer."""
    too_large = Answer(413, f"the body is over {limit} bytes\n".encode())
    length = request.content_length
    drain = limit * _DRAIN_FACTOR
    if length is not None and length > drain:
        return too_large
    body = bytearray()
    received = 0
    try:
        async with asyncio.timeout_at(deadline):
            while chunk := await request.content.read(_CHUNK):
                received += len(chunk)
                if received > drain:
                    return too_large
                if received <= limit:
                    body += chunk
    except TimeoutError:
        return too_large if received > limit else Answer(408, b"the body did not arrive in time\n")
    return too_large if received > limit else bytes(body)


async def _send(
    request: web.BaseRequest, answer: Answer, *, close: bool = False
) -> web.StreamResponse:
    """Write `answer` (its head only for HEAD); `close` when the request's body was not
    read, so the connection cannot be used again."""
    response = web.StreamResponse(status=answer.status)
    response.headers.update(answer.headers)
    response.headers["Server"] = "pvewatch"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Type"] = answer.content_type
    response.content_length = len(answer.body)
    if close:
        response.force_close()
    await response.prepare(request)
    if request.method != "HEAD":
        view = memoryview(answer.body)
        for start in range(0, len(view), _CHUNK):
            await response.write(view[start : start + _CHUNK])
    await response.write_eof()
    return response


def server_tls_context(tls: WebTlsConfig) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _TLS_VERSIONS[tls.min_version]
    if tls.max_version is not None:
        context.maximum_version = _TLS_VERSIONS[tls.max_version]
    context.load_cert_chain(tls.cert_file, tls.key_file)
    context.verify_mode = _CLIENT_AUTH[tls.client_auth_type]
    if tls.client_ca_file is not None:
        context.load_verify_locations(cafile=tls.client_ca_file)
    return context


def _bind(config: HttpConfig) -> socket.socket:
    host, port = config.host_port()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as e:
        sock.close()
        reason = e.strerror or type(e).__name__
        problem = f"http.listen: cannot listen on {config.listen}: {reason}"
        raise ConfigError([problem], source="http listener") from None
    sock.setblocking(False)
    return sock


class _Quiet(logging.LoggerAdapter[logging.Logger]):
    """aiohttp logs every malformed request with a traceback at error level: for a
    listener facing the network that is noise (and a way to fill the log), so debug."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        super().log(logging.DEBUG, msg, *args, **kwargs)
