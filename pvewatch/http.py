"""The listener for Prometheus and probes: `/metrics`, `/healthz`, `/readyz`.

A stdlib ThreadingHTTPServer on a thread of its own, not on the event loop: a blocked
loop cannot hide from /healthz, and a scrape (which builds tens of thousands of series on
a big cluster) never delays a poll. Answers: 200 or 503 for the probes (with a JSON body
saying which check fails), 404 for other paths, 405 for methods other than GET and HEAD.

Security the Prometheus way (`pvewatch.config.web`): optional TLS with optional client
certificates, and basic auth against bcrypt hashes, for every path. bcrypt is imported
here only. A wrong or missing password gets 401 with `WWW-Authenticate` and nothing else.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import hmac
import json
import logging
import socket
import ssl
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import bcrypt

from pvewatch.config.types import HttpConfig, WebTlsConfig
from pvewatch.errors import ConfigError
from pvewatch.metrics import Metrics
from pvewatch.probes import STALE_AFTER_SECS, Heartbeat, Probe, liveness, readiness
from pvewatch.secret import Secret

_IO_TIMEOUT_SECS = 10.0  # a client that sends nothing for this long is dropped
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
    """Serves the endpoints of one `HttpConfig` (whose `listen` must be set)."""

    def __init__(
        self,
        config: HttpConfig,
        *,
        metrics: Metrics,
        heartbeat: Heartbeat,
        logger: logging.Logger | None = None,
        stale_after_secs: float = STALE_AFTER_SECS,
    ) -> None:
        self._config = config
        self._log = logger or logging.getLogger("pvewatch.http")
        self._app = _App(
            metrics=metrics,
            heartbeat=heartbeat,
            auth=BasicAuth(config.basic_auth_users),
            stale_after_secs=stale_after_secs,
        )
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where it listens, e.g. `https://127.0.0.1:9886` (the real port when 0 was asked)."""
        if self._server is None:
            raise RuntimeError("the listener is not started")
        address = self._server.server_address
        host, port = str(address[0]), int(address[1])
        shown = f"[{host}]" if ":" in host else host
        return f"{'https' if self._config.tls else 'http'}://{shown}:{port}"

    def start(self) -> None:
        """Bind and serve on a thread. Raises ConfigError naming http.listen when the
        address cannot be used (in use, not local, no permission)."""
        host, port = self._config.host_port()
        tls = None if self._config.tls is None else server_tls_context(self._config.tls)
        try:
            server = _Server((host, port), _handler(self._app, self._log), tls, self._log)
        except OSError as e:
            reason = e.strerror or type(e).__name__
            problem = f"http.listen: cannot listen on {self._config.listen}: {reason}"
            raise ConfigError([problem], source="http listener") from None
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="pvewatch-http"
        )
        self._thread.daemon = True
        self._thread.start()
        self._log.info("serving /metrics, /healthz and /readyz on %s", self.url)

    def reconfigure(self, config: HttpConfig) -> None:
        """Take the TLS files and users of `config` (same `listen`) without closing the
        socket, so a reload does not make scrapes and probes fail: the connections that
        come next use them. Raises ConfigError when the certificate cannot be loaded."""
        if self._server is None:
            raise RuntimeError("the listener is not started")
        try:
            tls = None if config.tls is None else server_tls_context(config.tls)
        except (OSError, ssl.SSLError) as e:
            problem = f"http.tls_server_config: cannot load the certificate: {e}"
            raise ConfigError([problem], source="http listener") from None
        self._app.auth = BasicAuth(config.basic_auth_users)
        self._server.tls = tls
        self._config = config

    def close(self) -> None:
        """Stop serving and release the port. Safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


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


class BasicAuth:
    """Checks `Authorization: Basic ...` against bcrypt hashes; no users: everyone passes.

    bcrypt is slow on purpose and Prometheus sends the same password on every scrape, so
    the digest of the last password that passed is kept per user (as exporter-toolkit
    caches). An unknown user costs one bcrypt too, so timing does not tell users apart."""

    def __init__(self, users: Mapping[str, Secret]) -> None:
        self._hashes = {user: h.reveal().encode() for user, h in users.items()}
        self._passed: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._decoy = b""
        if self._hashes:
            cost = max(int(h.split(b"$")[2]) for h in self._hashes.values())
            self._decoy = bcrypt.hashpw(b"decoy", bcrypt.gensalt(rounds=cost))

    @property
    def enabled(self) -> bool:
        return bool(self._hashes)

    def allows(self, header: str | None) -> bool:
        if not self._hashes:
            return True
        credentials = _basic_credentials(header)
        if credentials is None:
            return False
        user, password = credentials
        digest = hashlib.sha256(user.encode() + b"\0" + password).digest()
        with self._lock:
            passed = self._passed.get(user)
        if passed is not None and hmac.compare_digest(passed, digest):
            return True
        hashed = self._hashes.get(user)
        try:
            ok = bcrypt.checkpw(password, hashed or self._decoy) and hashed is not None
        except ValueError:  # a password over 72 bytes (bcrypt 5 refuses it)
            ok = False
        if ok:
            with self._lock:
                self._passed[user] = digest
        return ok


def _basic_credentials(header: str | None) -> tuple[str, bytes] | None:
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    return user.decode("utf-8", "replace"), password


class _App:
    """What each path answers; shared by the handler threads."""

    def __init__(
        self,
        *,
        metrics: Metrics,
        heartbeat: Heartbeat,
        auth: BasicAuth,
        stale_after_secs: float,
    ) -> None:
        self.metrics = metrics
        self.heartbeat = heartbeat
        self.auth = auth
        self.stale_after_secs = stale_after_secs

    def answer(self, path: str, accept: str | None) -> tuple[int, bytes, str]:
        """(status, body, content type) for a GET of `path`."""
        if path == "/metrics":
            body, content_type = self.metrics.render(accept)
            return 200, body, content_type
        if path == "/healthz":
            return _probe(liveness(self.heartbeat.age(), self.stale_after_secs))
        if path == "/readyz":
            return _probe(readiness(self.metrics.progress(), self.metrics.monotonic()))
        return 404, b"not found: try /metrics, /healthz or /readyz\n", "text/plain; charset=utf-8"


def _probe(probe: Probe) -> tuple[int, bytes, str]:
    body = json.dumps(probe.to_dict(), indent=1).encode() + b"\n"
    return (200 if probe.ok else 503), body, "application/json"


def _handler(app: _App, log: logging.Logger) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "pvewatch"
        sys_version = ""
        timeout = _IO_TIMEOUT_SECS

        def do_GET(self) -> None:
            self._serve(send_body=True)

        def do_HEAD(self) -> None:
            self._serve(send_body=False)

        def _not_allowed(self) -> None:
            # Its body, if any, is not read: the connection cannot be used again.
            headers = {"Allow": "GET, HEAD", "Connection": "close"}
            self._reply(405, b"method not allowed\n", "text/plain", headers)

        do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = _not_allowed

        def _serve(self, *, send_body: bool) -> None:
            if not app.auth.allows(self.headers.get("Authorization")):
                challenge = {"WWW-Authenticate": 'Basic realm="pvewatch", charset="UTF-8"'}
                self._reply(401, b"unauthorized\n", "text/plain", challenge)
                return
            try:
                status, body, content_type = app.answer(
                    self.path.split("?", 1)[0], self.headers.get("Accept")
                )
            except Exception:  # a bug of ours: a 500 for this request, the daemon lives on
                log.exception("http: answering %s failed", self.path.split("?", 1)[0])
                status, body, content_type = 500, b"internal error\n", "text/plain"
            headers = {}
            if "gzip" in (self.headers.get("Accept-Encoding") or "") and len(body) > 1024:
                body, headers["Content-Encoding"] = gzip.compress(body, 1), "gzip"
            self._reply(status, body, content_type, headers, send_body=send_body)

        def _reply(
            self,
            status: int,
            body: bytes,
            content_type: str,
            headers: Mapping[str, str] | None = None,
            *,
            send_body: bool = True,
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("http: %s " + format, self.address_string(), *args)

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    # socketserver's default backlog of 5 drops the SYNs of a burst of connections (many
    # scrapers, probes, a client stalling several); they wait seconds to be retried.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        tls: ssl.SSLContext | None,
        log: logging.Logger,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.tls = tls  # replaced by Listener.reconfigure; read once per connection
        self._log = log
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Handshake on the request's own thread, so a slow client delays nobody else."""
        tls = self.tls
        if tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(_IO_TIMEOUT_SECS)
        try:
            wrapped = tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self._log.debug("http: TLS handshake with %s failed: %s", client_address[0], e)
            return
        try:
            super().finish_request(wrapped, client_address)
        finally:
            wrapped.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer is not worth a traceback on stderr.
        self._log.debug("http: request from %s failed", client_address[0], exc_info=True)
