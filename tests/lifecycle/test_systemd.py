"""sd_notify: the Notifier on real unix datagram sockets, the watchdog, the STATUS line, and
`pvewatch run` telling a real NOTIFY_SOCKET READY=1, STATUS=, WATCHDOG=1 and STOPPING=1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pvewatch.lifecycle.systemd import IMPORTANT_WAIT_SECS, Notifier, ServiceStatus, _watchdog_usec
from tests.e2e.harness import TOKEN, polls_served, simulator, wait_for


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    yield str(path), sock
    sock.close()


def test_notify_sends_one_datagram_per_call(notify_socket: tuple[str, socket.socket]) -> None:
    path, sock = notify_socket
    notifier = Notifier(path)
    notifier.ready("1 cluster: prod waiting for the first poll")
    notifier.status("line one\nline two")  # a STATUS is one line
    notifier.stopping()
    assert [sock.recv(4096).decode() for _ in range(3)] == [
        "READY=1\nSTATUS=1 cluster: prod waiting for the first poll",
        "STATUS=line one line two",
        "STOPPING=1\nSTATUS=stopping",
    ]


def test_reloading_carries_the_monotonic_time_systemd_253_wants(
    notify_socket: tuple[str, socket.socket],
) -> None:
    path, sock = notify_socket
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    Notifier(path).reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    fields = dict(line.split("=", 1) for line in sock.recv(4096).decode().split("\n"))
    assert fields.keys() == {"RELOADING", "MONOTONIC_USEC", "STATUS"}
    assert fields["RELOADING"] == "1"
    assert before <= int(fields["MONOTONIC_USEC"]) <= after


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract sockets are Linux's")
def test_abstract_socket_address() -> None:
    name = f"pvewatch-test-{uuid.uuid4()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        Notifier(f"@{name}").notify("READY=1")
        assert sock.recv(100) == b"READY=1"


def test_without_notify_socket_nothing_happens() -> None:
    notifier = Notifier.from_env({})
    assert not notifier.enabled
    notifier.ready("x")  # no error, no socket


def test_a_gone_socket_is_logged_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier(str(tmp_path / "nobody-listens.sock"))
    for _ in range(3):
        notifier.status("x")
    assert len([r for r in caplog.records if "cannot notify systemd" in r.message]) == 1


def _fill(path: str) -> None:
    """Send to `path` until its queue is full: its reader is stuck."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK) as sender:
        sender.connect(path)
        with contextlib.suppress(BlockingIOError):
            for _ in range(100_000):
                sender.send(b"STATUS=filler")


def test_a_full_socket_drops_a_status_at_once_and_counts_it(
    notify_socket: tuple[str, socket.socket],
) -> None:
    dropped: list[int] = []
    notifier = Notifier(notify_socket[0], on_dropped=lambda: dropped.append(1))
    _fill(notify_socket[0])
    started = time.monotonic()
    for _ in range(20):
        notifier.status("x")
        notifier.notify("WATCHDOG=1")
    assert time.monotonic() - started < 0.5 * IMPORTANT_WAIT_SECS  # never waited
    assert len(dropped) == 40


def test_ready_waits_briefly_for_room_then_gives_up(
    notify_socket: tuple[str, socket.socket], caplog: pytest.LogCaptureFixture
) -> None:
    path, sock = notify_socket
    dropped: list[int] = []
    notifier = Notifier(path, on_dropped=lambda: dropped.append(1))
    _fill(path)
    started = time.monotonic()
    notifier.stopping()
    assert IMPORTANT_WAIT_SECS * 0.9 <= time.monotonic() - started < IMPORTANT_WAIT_SECS + 5
    assert dropped == [1]
    assert "STOPPING=1 not sent" in caplog.text
    # The reader makes room while READY=1 waits: it gets through.
    reader = threading.Timer(0.2, lambda: [sock.recv(4096) for _ in range(3)])
    reader.start()
    notifier.ready("ok")
    reader.join()
    assert dropped == [1]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "30000000"}, 30_000_000),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"}, 30_000_000),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
    ],
)
def test_watchdog_interval_from_env(env: dict[str, str], expected: int | None) -> None:
    assert _watchdog_usec(env, 4242) == expected


async def test_watchdog_pings_every_half_interval(
    notify_socket: tuple[str, socket.socket],
) -> None:
    path, sock = notify_socket
    sock.setblocking(False)
    notifier = Notifier(path, watchdog_usec=100_000)  # 0.1 s: a ping every 0.05 s
    task = asyncio.create_task(notifier.keep_watchdog_fed())
    await asyncio.sleep(0.3)
    task.cancel()
    pings = []
    while True:
        try:
            pings.append(sock.recv(100))
        except BlockingIOError:
            break
    assert set(pings) == {b"WATCHDOG=1"}
    assert 3 <= len(pings) <= 8


async def test_no_watchdog_configured_returns_at_once(
    notify_socket: tuple[str, socket.socket],
) -> None:
    await asyncio.wait_for(Notifier(notify_socket[0]).keep_watchdog_fed(), 1)


def test_status_line() -> None:
    status = ServiceStatus(["prod", "lab"])
    assert status.line() == (
        "2 clusters: prod waiting for the first poll; lab waiting for the first poll"
    )
    status.poll_finished("prod", ok=True, resources=130, error_kind=None)
    status.poll_finished("lab", ok=False, resources=0, error_kind="unreachable")
    status.poll_finished("lab", ok=False, resources=0, error_kind="auth")
    assert status.line() == "2 clusters: prod ok (130 resources); lab auth (2 failed polls)"
    status.poll_finished("lab", ok=True, resources=7, error_kind=None)
    assert status.line().endswith("lab ok (7 resources)")
    assert ServiceStatus(["x"]).line() == "1 cluster: x waiting for the first poll"


def _recv_until(sock: socket.socket, predicate: str, got: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not any(predicate in m for m in got):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {predicate!r} within {timeout}s; got {got}")
        sock.settimeout(left)
        got.append(sock.recv(4096).decode())


def test_run_notifies_systemd_in_order(
    tmp_path: Path, notify_socket: tuple[str, socket.socket]
) -> None:
    path, sock = notify_socket
    with simulator() as sim:
        assert sim.fingerprint
        config = tmp_path / "watch.yaml"
        config.write_text(
            json.dumps(
                {
                    "clusters": [
                        {
                            "name": "sd",
                            "endpoints": [sim.url],
                            "token": TOKEN,
                            "tls": {"fingerprint": sim.fingerprint},
                            "interval_secs": 1,
                        }
                    ],
                    "store": {"path": str(tmp_path / "state.db")},
                    "http": {"listen": "127.0.0.1:0"},
                    "sinks": {"out": {"type": "log", "path": str(tmp_path / "events.jsonl")}},
                }
            )
        )
        env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"}
        env.pop("WATCHDOG_PID", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "pvewatch", "run", "-c", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        got: list[str] = []
        try:
            _recv_until(sock, "READY=1", got, 30)
            _recv_until(sock, "STATUS=1 cluster: sd ok (", got, 15)
            _recv_until(sock, "WATCHDOG=1", got, 5)
            proc.send_signal(signal.SIGTERM)
            _recv_until(sock, "STOPPING=1", got, 15)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            stderr = proc.communicate()[1]
    ready = next(i for i, m in enumerate(got) if "READY=1" in m)
    first_ok = next(i for i, m in enumerate(got) if "sd ok (" in m)
    stopping = next(i for i, m in enumerate(got) if "STOPPING=1" in m)
    assert ready < first_ok < stopping, got
    # Ready before the first poll: it does not wait for Proxmox.
    assert got[ready] == "READY=1\nSTATUS=1 cluster: sd waiting for the first poll", got
    assert "Traceback" not in stderr


def test_a_notify_socket_nobody_reads_does_not_stop_polling(
    tmp_path: Path, notify_socket: tuple[str, socket.socket]
) -> None:
    """The reader of $NOTIFY_SOCKET never reads: its queue fills within the first second
    (a watchdog ping every 0.2 s); polls, the listener and the shutdown go on."""
    path, _ = notify_socket
    with simulator() as sim:
        assert sim.fingerprint
        config = tmp_path / "watch.yaml"
        cluster = {
            "name": "sd",
            "endpoints": [sim.url],
            "token": TOKEN,
            "tls": {"fingerprint": sim.fingerprint},
            "interval_secs": 1,
        }
        config.write_text(
            json.dumps(
                {
                    "clusters": [cluster],
                    "store": {"path": str(tmp_path / "state.db")},
                    "http": {"listen": "127.0.0.1:0"},
                    "sinks": {"out": {"type": "log", "path": str(tmp_path / "events.jsonl")}},
                }
            )
        )
        env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"}
        env.pop("WATCHDOG_PID", None)
        log = tmp_path / "stderr.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "pvewatch", "run", "-c", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
        )
        try:
            found = wait_for(
                lambda: re.search(r"on (http://127\.0\.0\.1:\d+)", log.read_text()),
                what="the listener's address",
            )
            polled = polls_served(sim)
            wait_for(lambda: polls_served(sim) >= polled + 5, timeout=30, what="5 more polls")
            scraped = httpx.get(f"{found[1]}/metrics", timeout=10).text
            counter = r"^pvewatch_systemd_notifications_dropped_total (\S+)$"
            dropped = re.search(counter, scraped, re.MULTILINE)
            assert dropped is not None, scraped[-500:]
            assert float(dropped[1]) > 0
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    text = log.read_text()
    assert "Traceback" not in text
    assert "STOPPING=1 not sent" in text
