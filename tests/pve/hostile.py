"""A PVE API that answers too much or too slowly, on a real socket (plain HTTP): 2 GB of
body streamed from one 64 KiB buffer (never allocated), with or without announcing its
length, a gzip bomb (100 MB of zeros in ~100 kB), or a byte a second. It records how long
each connection lasted and how many bytes it sent, so a test can tell that the client
gave up, and when."""

from __future__ import annotations

import functools
import socketserver
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

TWO_GB = 2 * 1024**3
_BLOCK = b"0" * 65536
BOMB_BYTES = 100 * 1024**2  # what the gzip bomb inflates to


@functools.cache
def gzip_bomb() -> bytes:
    """BOMB_BYTES of zeros, gzipped (~100 kB), made without holding them all at once."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1024**2)
    parts = [squeeze.compress(zeros) for _ in range(BOMB_BYTES // len(zeros))]
    return b"".join([*parts, squeeze.flush()])


@dataclass
class Served:
    seconds: float
    bytes_sent: int


@dataclass
class Hostile:
    mode: str  # flood | announce | bomb | trickle
    url: str = ""
    served: list[Served] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        hostile = self.server.hostile
        started, sent = time.monotonic(), 0
        self.request.settimeout(30)
        try:
            self._read_head()
            sent = self._answer(hostile)
        except OSError:
            sent = getattr(self, "_sent", 0)
        with hostile.lock:
            hostile.served.append(Served(time.monotonic() - started, sent))

    def _read_head(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.request.recv(4096)
            if not chunk:
                raise ConnectionResetError("the client left")
            head += chunk

    def _answer(self, hostile: Hostile) -> int:
        self._sent = 0
        if hostile.mode == "trickle":  # headers, then a byte a second
            self._send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
            self._send(b"Content-Length: 100000\r\n\r\n")
            while not hostile.stop.wait(1.0):
                self._send(b" ")
            return self._sent
        if hostile.mode == "bomb":  # small on the wire, 100 MB once inflated
            bomb = gzip_bomb()
            self._send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
            self._send(b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb))
            self._send(bomb)
            return self._sent
        if hostile.mode == "announce":
            self._send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % TWO_GB)
            while self._sent < TWO_GB and not hostile.stop.is_set():
                self._send(_BLOCK)
            return self._sent
        # flood: chunked, no length announced
        self._send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        while self._sent < TWO_GB and not hostile.stop.is_set():
            self._send(b"%x\r\n" % len(_BLOCK) + _BLOCK + b"\r\n")
        return self._sent

    def _send(self, data: bytes) -> None:
        self.request.sendall(data)
        self._sent += len(data)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, hostile: Hostile) -> None:
        self.hostile = hostile
        super().__init__(("127.0.0.1", 0), _Handler)


@contextmanager
def hostile_api(mode: str) -> Iterator[Hostile]:
    hostile = Hostile(mode)
    server = _Server(hostile)
    hostile.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield hostile
    finally:
        hostile.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
