"""The listener's door: which connections get in, for how long, and with how many bytes.

A protocol in front of the HTTP server's own (aiohttp's, built by `inner`), for what an
HTTP server leaves to its deployment (a reverse proxy, usually):

- **A connection cap** (`Limits.max_connections`). A newcomer past the cap takes the
  place of the connection whose request began longest ago and is still not in (a
  slowloris), or of one left waiting (a keep-alive between scrapes, a TLS handshake)
  for more than `grace_secs`. When every place is busy with a request or just taken,
  newcomers wait in the kernel's listen backlog, and past it the kernel refuses them:
  nothing queues without bound, and a crowd of stalled clients cannot lock a scrape out.
- **A deadline per request** (`request_secs`): from the connection's start, or the end of
  its previous answer, until its request is in — TLS handshake, headers, and the body,
  which the handler reads against `Gate.busy()`'s deadline. Then `answer_secs` to answer.
- **A budget of bytes before the request is in** (`max_head_bytes`): request line and
  headers, whatever their count; past it the connection is dropped before the HTTP parser
  sees them, so memory per connection stays small whatever a client sends.
- **TLS is handshaken here**, with the context of the moment (`Gatekeeper.tls`), so a
  reload's certificate applies to the next connection without closing the socket.
  (asyncio sends no alert for a handshake it refuses: a client without a required
  certificate sees the connection closed.)

Dropped means aborted (a TCP reset): a client that breaks the rules gets no answer. Counts
of each reason are in `Gatekeeper.dropped`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, cast

ACCEPT_BATCH = 8  # connections accepted in one go before the loop serves the others
ACCEPT_PAUSE_SECS = 0.5  # after accept() failed (out of descriptors): wait, then go on
FULL_PAUSE_SECS = 0.05  # every place busy or just taken: look again after this


@dataclass(frozen=True, slots=True)
class Limits:
    max_connections: int = 64
    request_secs: float = 10.0
    answer_secs: float = 30.0
    max_head_bytes: int = 32 * 1024
    grace_secs: float = 1.0


class Gatekeeper:
    """Accepts the connections of one listening socket (`serve`) and keeps the rules.

    It accepts by itself rather than through `loop.create_server`, which accepts a whole
    backlog before any protocol sees a connection: here a connection past the cap is
    closed before it gets a transport, so the descriptors in use stay near the cap."""

    def __init__(
        self,
        inner: Callable[[], asyncio.Protocol],
        *,
        tls: ssl.SSLContext | None,
        limits: Limits,
        logger: logging.Logger,
    ) -> None:
        self.tls = tls  # replaced on reload; read once per connection
        self.limits = limits
        self.dropped: Counter[str] = Counter()
        self._inner = inner
        self._log = logger
        self._sock: socket.socket | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        # Admitted gates, the longest waiting first (a dict keeps insertion order).
        self._gates: dict[Gate, None] = {}
        self._by_inner: dict[object, Gate] = {}

    @property
    def open(self) -> int:
        return len(self._gates)

    def serve(self, sock: socket.socket) -> None:
        """Accept on `sock` (listening, non-blocking) until `stop`."""
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._accept)

    def stop(self) -> None:
        """Accept no more and drop every connection; the socket stays the caller's."""
        sock, self._sock = self._sock, None
        if sock is not None:
            asyncio.get_running_loop().remove_reader(sock.fileno())
        for gate in list(self._gates):
            gate.abort()

    def gate_of(self, inner: object) -> Gate | None:
        """The gate of the connection whose HTTP protocol is `inner`."""
        return self._by_inner.get(inner)

    def _accept(self) -> None:
        for _ in range(ACCEPT_BATCH):  # then the loop serves the others
            if self._sock is None:
                return
            evicted = None
            if len(self._gates) >= self.limits.max_connections:
                evicted = self._evictable()
                if evicted is None:  # every place is busy or just taken: wait in the backlog
                    self._pause(FULL_PAUSE_SECS)
                    return
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # out of descriptors, or the client gave up: pause
                self.dropped["accept failed"] += 1
                self._log.debug("http: cannot accept a connection: %s", e)
                self._pause(ACCEPT_PAUSE_SECS)
                return
            if evicted is not None:
                self.dropped["evicted"] += 1
                evicted.abort()
            gate = Gate(self)
            self._gates[gate] = None
            conn.setblocking(False)
            task = asyncio.get_running_loop().create_task(self._connect(gate, conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _pause(self, secs: float) -> None:
        assert self._sock is not None
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._sock.fileno())
        loop.call_later(secs, self._resume, self._sock)

    def _resume(self, sock: socket.socket) -> None:
        if self._sock is sock:
            asyncio.get_running_loop().add_reader(sock.fileno(), self._accept)

    async def _connect(self, gate: Gate, conn: socket.socket) -> None:
        try:
            await asyncio.get_running_loop().connect_accepted_socket(lambda: gate, conn)
        except OSError:
            conn.close()
            self._release(gate)

    def _evictable(self) -> Gate | None:
        """The connection whose request began longest ago and is still not in (a
        slowloris), else the one waiting longest (in its TLS handshake, or idle between
        two requests) once that is more than `Limits.grace_secs`: a newcomer gets the
        time to send its request before the next one can push it out."""
        cutoff = asyncio.get_running_loop().time() - self.limits.grace_secs
        waiting = [g for g in self._gates if g.state == "waiting"]
        started = [g for g in waiting if g.head_bytes]
        if started:
            return min(started, key=lambda g: g.head_started)
        return next((g for g in waiting if g.since < cutoff), None)

    def _attached(self, gate: Gate, inner: asyncio.Protocol) -> None:
        self._by_inner[inner] = gate

    def _waiting_again(self, gate: Gate) -> None:
        if gate in self._gates:  # to the end of the line
            del self._gates[gate]
            self._gates[gate] = None

    def _release(self, gate: Gate) -> None:
        self._gates.pop(gate, None)
        if gate.inner is not None:
            self._by_inner.pop(gate.inner, None)

    def _drop(self, gate: Gate, reason: str) -> None:
        self.dropped[reason] += 1
        self._log.debug("http: dropped a connection (%s)", reason)
        gate.abort()


class Gate(asyncio.Protocol):
    """One connection: forwards to the HTTP protocol while the rules hold."""

    def __init__(self, keeper: Gatekeeper) -> None:
        self._keeper = keeper
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._handshake: asyncio.Task[None] | None = None
        self.head_bytes = 0
        self.head_started = 0.0  # loop time of the request's first byte
        self._tail = b""  # the last bytes of the request head so far
        self._early: list[bytes] = []
        self.since = self._loop.time()
        self._closed = False
        self.state: Literal["waiting", "busy"] = "waiting"
        self.inner: asyncio.Protocol | None = None

    # -- what the handler tells ---------------------------------------------------------

    def busy(self) -> float:
        """The request's head is in: the handler runs, with `answer_secs` to answer.
        Returns the loop time by which its body must be in (the request deadline)."""
        self.state = "busy"
        self._arm(self._keeper.limits.answer_secs, "answer deadline")
        return self.since + self._keeper.limits.request_secs

    def idle(self) -> None:
        """The answer is out: the next request has a deadline and a budget of its own."""
        if self._closed:
            return
        self.state, self.head_bytes, self.since = "waiting", 0, self._loop.time()
        self._tail = b""
        self._keeper._waiting_again(self)
        self._arm(self._keeper.limits.request_secs, "request deadline")

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()
        self._lost()

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        raw = cast(asyncio.Transport, transport)
        if self._closed:  # dropped between accept and now
            raw.abort()
            return
        self._transport = raw
        self._arm(self._keeper.limits.request_secs, "request deadline")
        tls = self._keeper.tls
        if tls is None:
            self._attach(raw)
            return
        # The ClientHello may be here already: it is for the TLS layer, not for us.
        raw.pause_reading()
        self._handshake = self._loop.create_task(self._start_tls(raw, tls))

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        if self.state == "waiting":
            if not self.head_bytes:
                self.head_started = self._loop.time()
            end = _head_end(self._tail, data)
            # Only the head counts: the chunk that ends it may carry the body's start.
            self.head_bytes += len(data) if end is None else end
            if self.head_bytes > self._keeper.limits.max_head_bytes:
                self._keeper._drop(self, "request head too large")
                return
            if end is not None:  # the handler is about to run: not evictable
                self.busy()
            self._tail = data[-3:]
        if self.inner is None:  # right after the handshake, before start_tls returned
            self._early.append(data)
            return
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return None if self.inner is None else self.inner.eof_received()

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost()
        inner, self.inner = self.inner, None
        if inner is not None:
            inner.connection_lost(exc)

    # -- inside -------------------------------------------------------------------------

    async def _start_tls(self, raw: asyncio.Transport, tls: ssl.SSLContext) -> None:
        try:
            secured = await self._loop.start_tls(
                raw,
                self,
                tls,
                server_side=True,
                ssl_handshake_timeout=self._keeper.limits.request_secs,
            )
        except Exception as e:  # reset, refused, timed out, not TLS: all the same here
            self._keeper.dropped["tls handshake"] += 1
            self._log_debug("TLS handshake failed: %s", e)
            self.abort()
            return
        if secured is None or self._closed:
            if secured is not None:
                secured.abort()
            return
        self._attach(secured)

    def _attach(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self.inner = self._keeper._inner()
        self._keeper._attached(self, self.inner)
        self.inner.connection_made(transport)
        early, self._early = self._early, []
        for data in early:
            self.inner.data_received(data)

    def _arm(self, secs: float, reason: str) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(secs, self._keeper._drop, self, reason)

    def _lost(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._closed = True
        self._keeper._release(self)

    def _log_debug(self, message: str, *args: object) -> None:
        self._keeper._log.debug("http: " + message, *args)


def _head_end(tail: bytes, data: bytes) -> int | None:
    """Where in `data` the request head ends (just after its blank line, which may span
    `tail`, the last bytes received before `data`), or None when it does not end here."""
    found = (tail + data).find(b"\r\n\r\n")
    return None if found < 0 else max(0, found + 4 - len(tail))
