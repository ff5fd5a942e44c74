"""Reload and shutdown of `pvewatch run` as a real process, told by real signals, telling a
real NOTIFY_SOCKET: SIGHUP with a valid and an invalid config while the simulators churn
(nothing lost, nothing sent twice), SIGHUP during start-up, SIGTERM while a poll is held
and while a webhook receiver holds a delivery (exit 0 in time, nothing lost)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from pvewatch.simulator.server import SimServer
from pvewatch.store.sqlite import SqliteStore
from tests.e2e.harness import TOKEN, control, polls_served, read_events, simulator, wait_for
from tests.e2e.receiver import SECRET, receiver
from tests.faults.support import cluster_entry, start_guest, write_config
from tests.prom import parse, select

STOP_DEADLINE_SECS = 30.0  # TimeoutStopSec in deploy/pvewatch.service
LISTEN = {"http": {"listen": "127.0.0.1:0"}}


class Daemon:
    """`pvewatch run -c CONFIG`: its notifications in order, its log, signals to it."""

    def __init__(self, config: Path, log: Path) -> None:
        self._dir = tempfile.mkdtemp(prefix="pvw-")  # a unix socket path must be short
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(os.path.join(self._dir, "notify"))
        self.notes: list[str] = []
        self._seen = 0  # notes before this one were matched by expect()
        self.log_path = log
        env = {**os.environ, "NOTIFY_SOCKET": os.path.join(self._dir, "notify")}
        with log.open("a") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pvewatch", "run", "-c", str(config)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def expect(self, text: str, timeout: float = 30) -> str:
        """The next notification (after the last one expected) that contains `text`."""
        deadline = time.monotonic() + timeout
        while True:
            for i in range(self._seen, len(self.notes)):
                if text in self.notes[i]:
                    self._seen = i + 1
                    return self.notes[i]
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {text!r} within {timeout}s; got {self.notes}")
            self._sock.settimeout(left)
            self.notes.append(self._sock.recv(4096).decode())

    def pending_notes(self) -> list[str]:
        self._sock.setblocking(False)
        try:
            while True:
                self.notes.append(self._sock.recv(4096).decode())
        except BlockingIOError:
            return self.notes[self._seen :]

    def log(self) -> str:
        return self.log_path.read_text()

    def url(self) -> str:
        line = wait_for(
            lambda: [x for x in self.log().splitlines() if "serving /metrics" in x],
            what="the listener",
        )[-1]
        return line.rsplit(" ", 1)[1]

    def hup(self) -> None:
        self.proc.send_signal(signal.SIGHUP)

    def term(self) -> tuple[int, float]:
        """SIGTERM; the exit code and the seconds it took."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=STOP_DEADLINE_SECS + 10)
        return code, time.monotonic() - started

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._sock.close()
        os.unlink(os.path.join(self._dir, "notify"))
        os.rmdir(self._dir)


@contextmanager
def daemon(config: Path, tmp: Path) -> Iterator[Daemon]:
    d = Daemon(config, tmp / "pvewatch.log")
    try:
        yield d
    finally:
        d.close()
    assert "Traceback" not in d.log(), d.log()


def gauge(url: str, name: str) -> float:
    with httpx.Client(timeout=10) as client:
        (sample,) = select(parse(client.get(f"{url}/metrics").text), name)
    return sample.value


def ids(*paths: Path) -> list[str]:
    return [str(e["id"]) for path in paths for e in read_events(path)]


def rename_a_guest(sim: SimServer, name: str) -> str:
    """Rename a VM on an online node (its event is sent at once); its id."""
    with control(sim) as c:
        rows = c.get("/resources").json()
        online = {r["node"] for r in rows if r["type"] == "node" and r["status"] == "online"}
        guest = min(r["id"] for r in rows if r["type"] == "qemu" and r["node"] in online)
        c.patch(f"/resources/{guest}", json={"name": name}).raise_for_status()
    return str(guest)


def renamed(path: Path, guest: str, *, what: str) -> None:
    def seen() -> bool:
        return any(
            e["type"] == "guest.renamed" and e["resource"]["id"] == guest for e in read_events(path)
        )

    wait_for(seen, timeout=30, what=what)


def delivered(store: SqliteStore, sink: str) -> list[str]:
    """The ids of the events delivered to `sink`; none may be left pending or dead."""
    assert store.deliveries(sink=sink) == [], f"undelivered rows for {sink}"
    return [i.event.id for i in store.deliveries(sink=sink, state="delivered", limit=10**6)]


def test_sighup_applies_a_valid_config_and_rejects_an_invalid_one(tmp_path: Path) -> None:
    events, rotated, more = (tmp_path / n for n in ("events.jsonl", "events.1.jsonl", "more.jsonl"))
    with (
        simulator(churn_per_min=120) as a,
        simulator(churn_per_min=120, seed=11) as b,
        daemon(write_config(tmp_path, [entry("a", a)], {}, **LISTEN), tmp_path) as d,
    ):
        d.expect("a ok (")  # the baseline
        renamed(events, rename_a_guest(a, "before"), what="a rename in a")
        # Valid: a polled every 30 s instead of every second, cluster b and sink more added.
        two = [entry("a", a, interval_secs=30), entry("b", b)]
        sinks: dict[str, object] = {"more": {"type": "log", "format": "json", "path": str(more)}}
        path = write_config(tmp_path, two, sinks, **LISTEN)
        before = set(ids(events))
        d.hup()
        d.expect("RELOADING=1")
        d.expect("READY=1")
        a_polls, b_polls = polls_served(a), polls_served(b)
        d.expect("b ok (")  # b's baseline
        renamed(more, rename_a_guest(b, "after"), what="a rename in b, to the new sink")
        wait_for(lambda: polls_served(b) >= b_polls + 4, what="b polled every second")
        assert polls_served(a) <= a_polls + 1  # the first poll of the new runtime only
        assert gauge(d.url(), "pvewatch_config_last_reload_successful") == 1.0
        # Invalid: rejected with every problem, the running config stays; the log sink
        # opens its file again (logrotate moved it).
        doc = json.loads(path.read_text())
        doc["clusters"][1]["interval_secs"] = "soon"
        doc["sinks"]["more"]["type"] = "nope"
        path.write_text(json.dumps(doc))
        events.rename(rotated)
        d.hup()
        d.expect("RELOADING=1")
        d.expect("READY=1")
        assert gauge(d.url(), "pvewatch_config_last_reload_successful") == 0.0
        guest = rename_a_guest(b, "rejected")
        renamed(events, guest, what="a rename in b, in a new file")
        renamed(more, guest, what="a rename in b, to more still")
        code, _ = d.term()
        log = d.log()
    assert code == 0
    assert "config reloaded: 2 cluster(s) (added: b; removed: none), 2 sink(s)" in log
    rejected = [x for x in log.splitlines() if "ERROR" in x and "reload rejected" in x]
    assert any("clusters[1].interval_secs" in x for x in rejected), rejected
    assert any("sinks.more.type" in x for x in rejected), rejected
    assert TOKEN.split("=", 1)[1] not in log
    with SqliteStore(tmp_path / "state.db") as store:
        # A suppressed event (a held guest.stopped, ...) is recorded and sent nowhere.
        stored = [e.id for e in store.events(limit=10**6) if not e.suppressed]
        to_events, to_more = delivered(store, "events"), delivered(store, "more")
    # Every event went to `events` once; `more` got every event after the reload, once.
    assert Counter(ids(rotated, events)) == Counter(to_events) == Counter(stored)
    assert Counter(ids(more)) == Counter(to_more)
    assert to_more
    assert not before & set(to_more)


def test_a_sighup_during_start_up_is_applied_once_ready(tmp_path: Path) -> None:
    with (
        simulator() as sim,
        daemon(write_config(tmp_path, [entry("e2e", sim)], {}), tmp_path) as d,
    ):
        wait_for(lambda: hup_held_or_caught(d.proc.pid), what="pvewatch to hold SIGHUP")
        assert not any("READY=1" in n for n in d.pending_notes())  # still starting
        d.hup()
        d.hup()
        d.expect("READY=1")
        d.expect("RELOADING=1")
        d.expect("READY=1")
        code, _ = d.term()
    assert code == 0
    assert "config reloaded" in d.log()


def hup_held_or_caught(pid: int) -> bool:
    """SIGHUP is blocked or has a handler in `pid` (its default would end the process)."""
    status = Path(f"/proc/{pid}/status").read_text()
    masks = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    return any(int(masks[key], 16) & 1 for key in ("SigBlk", "SigCgt"))


def test_sigterm_while_a_poll_is_held_lets_it_commit(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    with (
        simulator() as sim,
        daemon(write_config(tmp_path, [entry("e2e", sim, timeout_secs=10)], {}), tmp_path) as d,
    ):
        d.expect("e2e ok (")  # the baseline
        guest = start_guest(sim)
        with control(sim) as c:
            c.post("/faults", json=[hold_poll(3)]).raise_for_status()
            wait_for(lambda: c.get("/faults").json() == [], what="a poll to be held")
        stopped_at = time.time()
        code, secs = d.term()
    assert code == 0
    assert secs < STOP_DEADLINE_SECS - 5, secs  # the held poll (3 s), then the flush
    with SqliteStore(tmp_path / "state.db") as store:
        snapshot, _ = store.load("e2e")
        to_events = delivered(store, "events")
    assert snapshot is not None
    assert snapshot.taken_at.timestamp() > stopped_at  # the held poll was committed
    started = [e for e in read_events(events) if e["resource"]["id"] == guest]
    assert [e["type"] for e in started] == ["guest.started"]
    assert Counter(ids(events)) == Counter(to_events)


def test_sigterm_during_a_slow_delivery_exits_in_time_and_sends_it_after_restart(
    tmp_path: Path,
) -> None:
    with simulator() as sim, receiver() as hooks:
        hook = {"type": "webhook", "url": hooks.url, "secret": SECRET, "timeout_secs": 60}
        path = write_config(tmp_path, [entry("e2e", sim)], {"hook": hook})
        with daemon(path, tmp_path) as d:
            d.expect("e2e ok (")
            hooks.set(hang=True)  # takes the request and never answers
            guest = start_guest(sim)
            wait_for(hooks.deliveries, what="the webhook request")
            code, secs = d.term()
        assert code == 0
        assert secs < STOP_DEADLINE_SECS - 5, secs
        with SqliteStore(tmp_path / "state.db") as store:
            pending = [i.event for i in store.deliveries(sink="hook", state="pending")]
        assert [(e.type, e.resource and e.resource.id) for e in pending] == [
            ("guest.started", guest)
        ]
        hooks.set()  # answers again
        with daemon(path, tmp_path) as d:
            wait_for(lambda: len(hooks.accepted()) == 1, what="the event after the restart")
            code, _ = d.term()
        assert code == 0
    (sent,) = hooks.accepted()
    assert sent.id == pending[0].id
    assert sent.verified
    with SqliteStore(tmp_path / "state.db") as store:
        assert delivered(store, "hook") == [pending[0].id]


def entry(name: str, sim: SimServer, **extra: Any) -> dict[str, object]:
    return cluster_entry(name, sim, token=TOKEN, **extra)


def hold_poll(secs: float) -> dict[str, object]:
    """A fault that answers the next resource list `secs` late."""
    return {"kind": "delay", "seconds": secs, "count": 1, "path": "/cluster/resources"}
