"""The simulator's HTTP(S) server: the PVE API under `/api2/json` and the control API under
`/_sim/` on one port, one thread per connection, keep-alive, and PVE's wire habits:
`Server: pve-api-daemon/3.0`, reason phrases in the status line, gzip above 1 KiB,
and the connection closed after any answer >= 400.

    with SimServer(SimOptions(listen="127.0.0.1:0")) as sim:
        httpx.get(sim.url + "/api2/json/version", verify=False)

`serve_forever()` is `pvewatch simulate`.
"""

from __future__ import annotations

import contextlib
import email.utils
import errno
import random
import signal
import socket
import ssl
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, TextIO
from urllib.parse import parse_qs, unquote, urlsplit

from pvewatch.simulator import SimOptions
from pvewatch.simulator.api import Api
from pvewatch.simulator.auth import Authenticator
from pvewatch.simulator.certs import make_self_signed
from pvewatch.simulator.cluster import SimCluster
from pvewatch.simulator.control import Control, RequestStats
from pvewatch.simulator.faults import REASONS, Fault, FaultQueue
from pvewatch.simulator.health.notifier import Notifier
from pvewatch.simulator.reply import GZIP_MIN_BYTES, Reply, Request, bare, compress, handler_error

MAX_BODY_BYTES = 256 * 1024**2  # room for a PUT of a very large resource list


class SimServer:
    """The simulator on a background thread; `start()` binds (port 0 picks a free one)."""

    def __init__(
        self, options: SimOptions, clock: Callable[[], float] = time.time, cycle_secs: float = 10
    ) -> None:
        self.options = options
        self.cluster = SimCluster(options, clock, cycle_secs)
        self.auth = Authenticator(options.tokens, options.user, options.password, clock)
        self.faults = FaultQueue()
        self.stats = RequestStats()
        self.api = Api(self.cluster, self.auth, options)
        self.notifier = Notifier(options.notify_url, options.notify_token)
        self.control = Control(self.cluster, self.faults, self.stats, self.notifier)
        self.fingerprint: str | None = None
        self.cert_pem: bytes | None = None
        self._httpd: _HTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the simulator is not started")
        address, port = self._httpd.server_address[:2]
        host = address.decode() if isinstance(address, bytes) else address
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.options.tls else 'http'}://{host}:{port}"

    def start(self) -> SimServer:
        host, _, port = self.options.listen.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        context = self._tls_context() if self.options.tls else None
        self._httpd = _HTTPServer((host, int(port)), self, context)
        self._spawn(self._httpd.serve_forever, 0.05)
        if self.options.churn_per_min > 0:
            self._spawn(self._churn_loop)
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.close_connections()
            self._httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self.notifier.stop()

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _spawn(self, target: Callable[..., Any], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name="pvewatch-sim")
        thread.start()
        self._threads.append(thread)

    def _tls_context(self) -> ssl.SSLContext:
        cert = make_self_signed()
        self.fingerprint, self.cert_pem = cert.fingerprint, cert.cert_pem
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory(prefix="pvewatch-sim-") as tmp:
            cert_file, key_file = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
            cert_file.write_bytes(cert.cert_pem)
            key_file.write_bytes(cert.key_pem)
            context.load_cert_chain(cert_file, key_file)
        return context

    def _churn_loop(self) -> None:
        rng = random.Random(self.options.seed)
        interval = 60.0 / self.options.churn_per_min
        next_step = self.cluster.clock() + interval
        while not self._stopping.wait(min(1.0, interval)):
            with self.cluster.lock:
                now = self.cluster.clock()
                self.cluster.complete_due(now)
                while now >= next_step:
                    self.cluster.step(rng, next_step)
                    next_step += interval
                self._send_notifications()

    def answer(self, req: Request) -> Reply:
        """The reply for one request; faults apply to the API, never to /_sim/."""
        if req.path == "/_sim" or req.path.startswith("/_sim/"):
            with self.cluster.lock:
                reply = self.control.handle(req)
                self._send_notifications()
                return reply
        taken = self.faults.take(req.path)
        if taken is not None and taken[0].kind != "delay":
            return self._fault_reply(req, *taken)
        with self.cluster.lock:
            reply = self.api.handle(req)
        if taken is not None:
            reply.delay_secs += taken[0].seconds
        return reply

    def _send_notifications(self) -> None:
        """What the simulated PVE decided to send, to its webhook target (queued, not
        waited for). Call with the cluster lock held."""
        for notice in self.cluster.health.take_outbox():
            self.notifier.submit(notice)

    def _fault_reply(self, req: Request, fault: Fault, use: int) -> Reply:
        if fault.kind == "reset":
            return Reply(0, "", reset=True)
        if fault.kind == "body":
            reason = "OK" if fault.code == 200 else REASONS.get(fault.code, "Simulated fault")
            return Reply(fault.code, reason, fault.body.encode())
        if fault.kind == "garbage":
            if use % 2 == 0:
                return Reply(200, "OK", b"<html><body>Proxy Error</body></html>")
            with self.cluster.lock:
                real = self.api.handle(req).body or b'{"data":[{"id":"qemu/100"}]}'
            return Reply(200, "OK", real[: max(1, len(real) // 2)])
        reason = REASONS.get(fault.code, "Simulated fault")
        if fault.code == 401 or fault.code >= 595:
            return bare(fault.code, reason)
        return handler_error(fault.code, reason + "\n")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops the SYNs of a burst of connections, which
    # then wait a second or more to be retried.
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], sim: SimServer, context: ssl.SSLContext | None
    ) -> None:
        self.sim = sim
        self.context = context
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        conn: socket.socket = request
        if self.context is not None:
            try:  # the handshake runs on this connection's thread, not the accept loop
                request.settimeout(10)
                conn = self.context.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):
                return
        with self._conns_lock:
            self._conns.add(conn)
        try:
            _Handler(conn, client_address, self)
        finally:
            with self._conns_lock:
                self._conns.discard(conn)
            conn.close()

    def close_connections(self) -> None:
        with self._conns_lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60
    server: _HTTPServer

    def version_string(self) -> str:
        return "pve-api-daemon/3.0"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: with Nagle on, a small body waits for the
        # client's delayed ACK (40 ms on Linux), a delay PVE does not have.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: a test run or a demo does not want one line per request

    def parse_request(self) -> bool:
        parsed = super().parse_request()
        if not parsed:  # answered with an error already; `path` may not even be set
            return False
        path = unquote(urlsplit(self.path).path)
        if not path.startswith("/_sim"):
            self.server.sim.stats.count(self.command, path)
        return True

    def _dispatch(self) -> None:
        try:
            request = self._request()
        except ValueError:  # a Content-Length that is not a number
            self._send(handler_error(400, "invalid Content-Length\n"))
            return
        try:
            reply = self.server.sim.answer(request)
        except Exception as exc:  # a simulator bug answers like a dying PVE handler
            reply = handler_error(500, f"simulator error: {type(exc).__name__}: {exc}\n")
        if reply.delay_secs:
            time.sleep(reply.delay_secs)  # the simulated latency itself, not a test wait
        if reply.reset:
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        self._send(reply)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def _request(self) -> Request:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        return Request(
            method=self.command,
            path=unquote(split.path),
            query=parse_qs(split.query, keep_blank_values=True),
            body=self.rfile.read(min(length, MAX_BODY_BYTES)) if length > 0 else b"",
            content_type=self.headers.get("Content-Type", ""),
            cookie=self.headers.get("Cookie"),
            authorization=self.headers.get("Authorization"),
            csrf=self.headers.get("CSRFPreventionToken"),
            accept_gzip="gzip" in self.headers.get("Accept-Encoding", "").lower(),
        )

    def _send(self, reply: Reply) -> None:
        body = reply.body or b""
        gzipped = reply.gzipped
        accepts = "gzip" in self.headers.get("Accept-Encoding", "").lower()
        if gzipped is None and accepts and len(body) > GZIP_MIN_BYTES:
            gzipped = compress(body)
        # The status line is latin-1; a reason quoting a path may hold anything.
        reason = reply.reason.encode("latin-1", "replace").decode("latin-1")
        self.send_response(reply.status, reason)
        if reply.body is not None:
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Cache-Control", "max-age=0")
            self.send_header("Pragma", "no-cache")
            self.send_header("Expires", email.utils.formatdate(usegmt=True))
        if gzipped is not None and accepts:
            self.send_header("Content-Encoding", "gzip")
            body = gzipped
        self.send_header("Content-Length", str(len(body)))
        if reply.status >= 400 or self.close_connection:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


def serve_forever(options: SimOptions, out: TextIO = sys.stdout) -> int:
    """`pvewatch simulate`: serve until SIGINT/SIGTERM; 2 when the port cannot be bound."""
    sim = SimServer(options)
    try:
        sim.start()
    except OSError as exc:
        busy = exc.errno == errno.EADDRINUSE
        why = "address already in use" if busy else (exc.strerror or str(exc))
        print(f"pvewatch simulate: cannot listen on {options.listen}: {why}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        _print_banner(sim, out)
        while not stop.wait(0.5):
            pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sim.stop()
    return 0


def _print_banner(sim: SimServer, out: TextIO) -> None:
    o = sim.options
    print(f"pvewatch simulator: {o.nodes} nodes, {o.guests} guests, PVE {o.pve_version}", file=out)
    print(f"  api:         {sim.url}/api2/json", file=out)
    print(f"  control:     {sim.url}/_sim/", file=out)
    if sim.fingerprint:
        print(f"  fingerprint: {sim.fingerprint}", file=out)
    if sim.auth.open:
        print("  auth:        none configured: every request is accepted", file=out)
    for spec in o.tokens:
        print(f"  auth:        API token {spec.rpartition('=')[0]} (secret as given)", file=out)
    if o.user:
        print(f"  auth:        user {o.user} (password as given)", file=out)
    if o.notify_url:
        print(f"  notify:      PVE notifications go to {o.notify_url}", file=out)
    out.flush()
