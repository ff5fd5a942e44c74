"""Test support for the PVE client: the captured answers, and a small threaded HTTPS
server for socket-level tests (not the simulator).

It counts the HTTP request lines it receives, so a test can prove that a refused server
never got a request, and so never saw the token.
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pvewatch.simulator.certs import SelfSigned

CAPTURED = Path(__file__).resolve().parents[2] / ".." / "shared" / "pve-api" / "captured"


@dataclass
class ServerState:
    mode: str = "ok"  # ok | hang | reset
    request_lines: int = 0
    headers: list[dict[str, str]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: TlsTestServer

    def setup(self) -> None:
        # Handshake here, on the connection's own thread, not in accept().
        self.request = self.server.context.wrap_socket(self.request, server_side=True)
        super().setup()

    def parse_request(self) -> bool:
        with self.server.state.lock:
            self.server.state.request_lines += 1
        return super().parse_request()

    def do_GET(self) -> None:
        state = self.server.state
        with state.lock:
            state.headers.append(dict(self.headers.items()))
        if state.mode == "hang":
            state.release.wait(timeout=10)
            return
        if state.mode == "reset":
            # SO_LINGER 0: close with an RST instead of a FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        body = json.dumps({"data": {"version": "9.1.9", "release": "9.1"}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class TlsTestServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext, state: ServerState) -> None:
        self.context = context
        self.state = state
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # refused handshakes and resets are what these tests provoke


@dataclass
class TlsServer:
    url: str
    cert: SelfSigned
    state: ServerState
