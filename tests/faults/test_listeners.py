"""Listeners fed garbage: junk bytes, oversized request lines and headers, broken
Content-Length, binary paths, JSON bombs on the control API, and a crowd of stalled
(slowloris) connections. Each request gets a 4xx or a closed connection, within a
deadline, and the listener keeps serving everyone else. Covers the simulator (its API
and /_sim/ control API, over HTTP and HTTPS) and, once it is there, the metrics listener."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.harness import simulator
from tests.faults.figures import Figures
from tests.faults.rig import fault_config, watching

DEADLINE_SECS = 10.0
STALLED = 40

GARBAGE: list[tuple[str, bytes]] = [
    ("junk bytes", b"\x00\xff\xfe garbage \x80\r\n\r\n"),
    ("not HTTP", b"HELLO THERE\r\n\r\n"),
    ("a 70 KiB request line", b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n"),
    ("200 headers", b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 200 + b"\r\n"),
    ("a 70 KiB header", b"GET / HTTP/1.1\r\nX-Big: " + b"b" * 70_000 + b"\r\n\r\n"),
    ("HTTP/9.9", b"GET / HTTP/9.9\r\n\r\n"),  # 505 Version Not Supported is the answer
    ("binary path", b"GET /_sim/\xff\xfe%00%ff HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("negative length", b"POST /_sim/faults HTTP/1.1\r\nContent-Length: -5\r\n\r\n"),
    ("length in words", b"POST /_sim/faults HTTP/1.1\r\nContent-Length: ten\r\n\r\n"),
    (
        "control API JSON bomb",
        b"PUT /_sim/resources HTTP/1.1\r\nContent-Length: 200000\r\n\r\n"
        + b"[" * 100_000
        + b"]" * 100_000,
    ),
    (
        "control API wrong types",
        b'POST /_sim/faults HTTP/1.1\r\nContent-Length: 31\r\n\r\n{"kind": "status", "count": []}',
    ),
    (
        "API with junk auth",
        b"GET /api2/json/cluster/resources HTTP/1.1\r\nAuthorization: \xff\r\n\r\n",
    ),
]


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    tls: bool
    probe: bytes  # a request the listener must still answer with 200 afterwards


def _connect(target: Target) -> socket.socket:
    sock = socket.create_connection((target.host, target.port), timeout=DEADLINE_SECS)
    if not target.tls:
        return sock
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context.wrap_socket(sock)


def _exchange(target: Target, request: bytes) -> bytes:
    """Send `request`; what came back before the server closed or the deadline."""
    with _connect(target) as sock:
        try:
            sock.sendall(request)
        except OSError:
            return b""  # the server stopped reading and closed: that is an answer too
        answer = b""
        deadline = time.monotonic() + DEADLINE_SECS
        while b"\r\n\r\n" not in answer and time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, OSError):
                break
            if not chunk:
                break
            answer += chunk
    return answer


def _status(answer: bytes) -> int | None:
    if not answer:
        return None  # closed without a word
    if not answer.startswith(b"HTTP/"):
        # http.server answers a request it cannot even parse as HTTP/0.9: no status line,
        # only the error page, which names the code.
        code = answer.partition(b"Error code: ")[2][:3]
        assert code.isdigit(), f"not an HTTP answer: {answer[:80]!r}"
        return int(code)
    head = answer.split(b"\r\n", 1)[0].split()
    assert len(head) >= 2, f"not an HTTP answer: {answer[:80]!r}"
    assert head[0].startswith(b"HTTP/1."), f"not an HTTP answer: {answer[:80]!r}"
    return int(head[1])


def _assault(target: Target, figures: Figures) -> None:
    for name, request in GARBAGE:
        started = time.monotonic()
        status = _status(_exchange(target, request))
        assert status is None or 400 <= status < 500 or status == 505, f"{name}: got {status}"
        assert time.monotonic() - started < DEADLINE_SECS, f"{name}: no answer in time"
        figures.add("garbage_requests")
    with ExitStack() as stack:
        started = time.monotonic()
        for _ in range(STALLED):  # each sends half a request line and stalls
            sock = stack.enter_context(_connect(target))
            sock.sendall(b"GET /api2/json/ver")
        connected = time.monotonic() - started
        figures.measure(f"secs_to_open_{STALLED}_connections_at_once", connected)
        # Generous for a loaded 2-core machine (2.1 s seen); a short listen backlog costs
        # SYN retries of 1, 3, 7... s per connection beyond it.
        assert connected < DEADLINE_SECS, f"{STALLED} connections took {connected:.1f} s"
        started = time.monotonic()
        assert _status(_exchange(target, target.probe)) == 200, "stalled clients block others"
        waited = time.monotonic() - started
        assert waited < DEADLINE_SECS
        figures.measure(f"answer_secs_beside_{STALLED}_stalled_connections", waited)
        figures.add("garbage_requests", STALLED)
    assert _status(_exchange(target, target.probe)) == 200, "the listener stopped serving"


@pytest.mark.parametrize("tls", [True, False], ids=["https", "http"])
def test_the_simulator_answers_garbage_with_4xx_or_closes(tls: bool, figures: Figures) -> None:
    with simulator(tls=tls) as sim:
        host, port = sim.url.rsplit("/", 1)[1].rsplit(":", 1)
        probe = b"GET /_sim/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        _assault(Target(host, int(port), tls, probe), figures)


async def test_the_metrics_listener_answers_garbage_with_4xx_or_closes(
    tmp_path: Path, figures: Figures
) -> None:
    with simulator() as sim:
        async with watching(sim, fault_config(sim, tmp_path), serve_http=True) as rig:
            listener = rig.runtime.listener
            assert listener is not None
            host, port = listener.url.rsplit("/", 1)[1].rsplit(":", 1)
            probe = b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            target = Target(host, int(port), False, probe)
            await asyncio.to_thread(_assault, target, figures)
