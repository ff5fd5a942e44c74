"""The listener's limits on a real socket (pvewatch.http.gate and the body reading of
pvewatch.http.listener), with short deadlines: a request that is not in by its deadline
is dropped, whether it stalls in its head or its body; auth is decided before a body is
read; a head over the byte budget is dropped; past the connection cap, stalled clients
make room for a newcomer, and descriptors stay at the cap."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

import httpx

from pvewatch.config.types import HttpConfig
from pvewatch.http.gate import Limits
from pvewatch.http.listener import Listener
from pvewatch.http.routes import Answer, Asked, Route
from pvewatch.observability.probes import Heartbeat
from pvewatch.secret import Secret
from tests.e2e.harness import wait_for
from tests.test_http import HASH, LOCAL, new_metrics, new_readiness

QUICK = Limits(max_connections=8, request_secs=1.0, answer_secs=5.0, max_head_bytes=4096)


def _echo(asked: Asked) -> Answer:
    return Answer(200, b"got %d bytes" % len(asked.body))


ECHO = Route("/echo", _echo, methods=frozenset({"POST"}), max_body_bytes=1000)


@contextmanager
def serving(
    limits: Limits = QUICK, routes: Sequence[Route] = (ECHO,), config: HttpConfig | None = None
) -> Iterator[Listener]:
    listener = Listener(
        config or HttpConfig(listen=LOCAL),
        metrics=new_metrics(),
        readiness=new_readiness(),
        heartbeat=Heartbeat(),
        routes=routes,
        limits=limits,
    )
    listener.start()
    try:
        yield listener
    finally:
        listener.close()


def _open(listener: Listener, first: bytes = b"") -> socket.socket:
    host, port = listener.url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    if first:
        sock.sendall(first)
    return sock


def _closed_within(sock: socket.socket, secs: float) -> bytes:
    """What the server sent before closing; fails if it is still open after `secs`."""
    sock.settimeout(secs)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        return received
    except TimeoutError:
        raise AssertionError(f"still open after {secs} s; got {received[:80]!r}") from None
    return received


def test_a_head_that_is_not_in_by_the_deadline_is_dropped() -> None:
    with serving() as listener, _open(listener, b"GET /healthz HTTP/1.1\r\nX-A: ") as sock:
        started = time.monotonic()
        for _ in range(3):  # bytes keep coming, but the request never ends
            time.sleep(0.3)
            sock.sendall(b"a")
        assert _closed_within(sock, 10) == b""
        assert time.monotonic() - started >= QUICK.request_secs * 0.9


def test_a_body_that_is_not_in_by_the_deadline_ends_the_request() -> None:
    head = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
    with serving() as listener, _open(listener, head + b"x" * 10) as sock:
        answer = _closed_within(sock, 10)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]


def test_a_body_is_read_up_to_its_limit() -> None:
    with serving() as listener, httpx.Client(base_url=listener.url) as client:
        assert client.post("/echo", content=b"x" * 1000).text == "got 1000 bytes"
        assert client.post("/echo", content=b"x" * 1001).status_code == 413
        streamed = client.post("/echo", content=iter([b"x" * 600, b"x" * 600]))  # chunked
        assert streamed.status_code == 413


def test_a_body_sent_with_its_head_is_not_counted_as_head() -> None:
    # One segment with the head and a body past the head budget (4 KiB): answered.
    body = b"x" * 900 + b"\n" * 9000
    head = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    big = Route("/echo", _echo, methods=frozenset({"POST"}), max_body_bytes=20_000)
    with serving(routes=(big,)) as listener, _open(listener, head + body) as sock:
        sock.settimeout(10)
        answer = b""
        while not answer.endswith(b" bytes") and (chunk := sock.recv(65536)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:80]
    assert answer.endswith(b"got 9900 bytes")


def test_a_body_over_the_limit_is_read_before_its_413() -> None:
    # Closing with the body unread would reset the connection: the client would see the
    # reset, not the 413 (measured: 4 in 10 before the body was read).
    with serving() as listener, httpx.Client(base_url=listener.url) as client:
        codes = {client.post("/echo", content=b"x" * 3000).status_code for _ in range(20)}
    assert codes == {413}


def test_auth_is_decided_before_the_body_is_read() -> None:
    config = HttpConfig(listen=LOCAL, basic_auth_users={"prometheus": Secret(HASH)})
    head = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 999\r\n\r\n"  # and no body
    with serving(config=config) as listener, _open(listener, head) as sock:
        answer = _closed_within(sock, 10)
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:80]
    assert b"Connection: close" in answer


def test_a_head_over_the_byte_budget_is_dropped_unanswered() -> None:
    headers = b"".join(b"X-%d: %s\r\n" % (n, b"v" * 1000) for n in range(5))  # 5 KB > 4 KiB
    with serving() as listener:
        with _open(listener, b"GET /healthz HTTP/1.1\r\n" + headers + b"\r\n") as sock:
            assert _closed_within(sock, 10) == b""
        with httpx.Client(base_url=listener.url) as client:
            assert client.get("/healthz").status_code == 200


def test_stalled_clients_past_the_cap_make_room_and_descriptors_stay_at_the_cap() -> None:
    fds = len(os.listdir("/proc/self/fd"))
    with serving() as listener, ExitStack() as stack:
        stalled = [
            stack.enter_context(_open(listener, b"GET /metrics HTTP/1.1\r\nX-A: "))
            for _ in range(3 * QUICK.max_connections)
        ]
        wait_for(lambda: listener.open_connections == QUICK.max_connections, what="the cap")
        # The test's own sockets are in this process too: the listener adds at most the cap.
        assert len(os.listdir("/proc/self/fd")) <= fds + len(stalled) + QUICK.max_connections + 8
        with httpx.Client(base_url=listener.url, timeout=5) as client:
            for _ in range(5):
                assert client.get("/healthz").status_code == 200
        assert listener.open_connections <= QUICK.max_connections
    wait_for(lambda: listener.open_connections == 0, what="every connection to close")
