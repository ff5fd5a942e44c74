"""A webhook receiver on a real socket for the end-to-end tests, with its own Standard
Webhooks verification written from the spec (it does not import pvewatch's signing).

It answers each request as its current `mode` says: 200, any status (with headers),
after a delay, never (until closed), or a body that never ends; `stop()` closes the
socket so connections are refused, `start()` opens the same port again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET = "whsec_" + base64.b64encode(b"e2e-receiver-key-0123456789abcdef").decode()


def verify_standard_webhook(
    secret: str, headers: Mapping[str, str], body: bytes, now: float, tolerance: float = 300
) -> bool:
    """The receiver's side of https://www.standardwebhooks.com/, written independently:
    HMAC-SHA256 with the base64-decoded part of `whsec_...` over `{id}.{timestamp}.{body}`,
    compared with each space-separated `v1,<base64>` of webhook-signature."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not msg_id or not timestamp or not signatures or not timestamp.isdigit():
        return False
    if abs(now - int(timestamp)) > tolerance:
        return False
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    for candidate in signatures.split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            return True
    return False


@dataclass(frozen=True)
class Delivery:
    """One request the receiver got."""

    at: float
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    answered: int | None  # the status answered; None: none (hung, endless, body cut short)

    @property
    def id(self) -> str:
        return self.headers.get("webhook-id", "")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Mode:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_secs: float = 0.0
    hang: bool = False  # never answer
    endless: bool = False  # answer 200 and send body bytes forever


class Receiver:
    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret
        self.mode = Mode()
        self.requests: list[Delivery] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/T0KEN-IN-PATH"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            do_PUT = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._closing.clear()
        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close the socket (new connections are refused); hung answers are released."""
        self._closing.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def set(self, **mode: Any) -> None:
        self.mode = Mode(**mode)

    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self.requests)

    def accepted(self) -> list[Delivery]:
        """The requests answered 2xx."""
        return [d for d in self.deliveries() if d.answered is not None and d.answered < 300]

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        mode = self.mode
        length = int(h.headers.get("content-length") or 0)
        body = h.rfile.read(length)
        headers = {k.lower(): v for k, v in h.headers.items()}
        delivery = Delivery(
            time.time(),
            h.command,
            h.path,
            headers,
            body,
            verify_standard_webhook(self.secret, headers, body, time.time()),
            None if mode.hang or mode.endless or len(body) < length else mode.status,
        )
        with self._lock:
            self.requests.append(delivery)
        if len(body) < length:  # the sender died mid-request (kill -9): nothing came
            h.close_connection = True
            return
        if mode.hang:
            self._closing.wait(60)
            return
        if mode.delay_secs:
            self._closing.wait(mode.delay_secs)
        h.send_response(mode.status)
        for name, value in mode.headers.items():
            h.send_header(name, value)
        if mode.endless:
            h.end_headers()
            while not self._closing.is_set():
                try:
                    h.wfile.write(b"." * 16)
                    h.wfile.flush()
                except OSError:
                    return
                time.sleep(0.05)
            return
        answer = b'{"ok": true}'
        h.send_header("content-length", str(len(answer)))
        h.end_headers()
        h.wfile.write(answer)


@contextmanager
def receiver(secret: str = SECRET) -> Iterator[Receiver]:
    r = Receiver(secret)
    r.start()
    try:
        yield r
    finally:
        r.stop()
