"""A webhook receiver that misbehaves on demand, on a real socket on 127.0.0.1.

`mode` says how it answers: "ok" (200), "status:<code>" (that status; 429 and 503 with
`Retry-After: 1`), "slow" (200 after SLOW_SECS), "endless" (200, then a body that never
ends), "redirect" (302 to another path of its own). `down()` closes the socket so
connections are refused; `up()` listens on the same port again. Every request is kept.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SLOW_SECS = 1.0


@dataclass(frozen=True)
class Request:
    path: str  # without the query
    headers: dict[str, str]
    body: bytes
    status: int  # what it was answered; 0 when the answer or the body never ended


@dataclass
class Receiver:
    mode: str = "ok"
    requests: list[Request] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closing: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def up(self) -> Receiver:
        self._closing.clear()
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        server.daemon_threads = True
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        self._server = server
        return self

    def down(self) -> None:
        server, self._server = self._server, None
        self._closing.set()  # ends endless answers
        if server is not None:
            server.shutdown()
            server.server_close()

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def delivered(self) -> list[Request]:
        """The requests answered 2xx on the hook path."""
        with self._lock:
            return [r for r in self.requests if 200 <= r.status < 300 and r.path == "/hook"]

    def delivered_ids(self) -> set[str]:
        return {r.headers.get("webhook-id", "") for r in self.delivered()}


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            if len(body) < length:  # the sender died mid-request (kill -9): nothing came
                receiver.record(Request(self.path.split("?", 1)[0], headers, body, 0))
                self.close_connection = True
                return
            mode = receiver.mode
            status = self._answer(mode)
            receiver.record(Request(self.path.split("?", 1)[0], headers, body, status))

        do_PUT = do_POST

        def _answer(self, mode: str) -> int:
            if mode == "slow":
                time.sleep(SLOW_SECS)  # the receiver's slowness itself, not a test wait
            if mode == "endless":
                self.send_response(200)
                self.send_header("Content-Length", "1000000000")
                self.end_headers()
                while not receiver._closing.wait(0.1):
                    try:
                        self.wfile.write(b" ")
                        self.wfile.flush()
                    except OSError:
                        break
                self.close_connection = True
                return 0
            status = int(mode.split(":", 1)[1]) if mode.startswith("status:") else 200
            if mode == "redirect":
                status = 302
            self.send_response(status)
            if status in (429, 503):
                self.send_header("Retry-After", "1")
            if status == 302:
                self.send_header("Location", f"http://127.0.0.1:{receiver.port}/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return status

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
