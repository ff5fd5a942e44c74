"""`kill -9` of `pvewatch run` at random moments (start-up, poll, store transaction,
delivery to a log and a webhook), many times over, while the cluster keeps changing; then
one clean run. Every event committed reaches both sinks at least once, byte-identical
each time; no event is invented, no transition is reported under two ids, and the
database passes `PRAGMA integrity_check` after every kill. Extends
tests/e2e/test_crash.py (six kills, a status chain, the log sink) with counted
iterations, integrity checks, a webhook, and tag changes, which no rule holds back or
counts as flapping, so the chain check stays exact as rules grow."""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pvewatch.model import Event
from pvewatch.simulator.server import SimServer
from pvewatch.store.sqlite import SqliteStore
from tests.e2e.harness import TOKEN, control, polls_served, read_events, simulator, wait_for
from tests.faults.figures import Figures
from tests.faults.receiver import Receiver
from tests.faults.support import cluster_entry, write_config

CLUSTER = "kill"


def _write_config(tmp: Path, sim: SimServer, hook: Receiver) -> Path:
    (tmp / "token").write_text(TOKEN + "\n")
    cluster = cluster_entry(CLUSTER, sim, token_file=str(tmp / "token"))
    hook_sink = {"type": "webhook", "url": hook.url, "retry": {"initial_secs": 0.2}}
    return write_config(tmp, [cluster], {"hook": hook_sink})


def _start(config: Path, tmp: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pvewatch", "run", "-c", str(config), "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "stderr.log").open("ab"),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _stored(db: Path) -> list[Event]:
    if not db.exists():
        return []
    with SqliteStore(db) as store:
        return store.events(limit=1_000_000)


def _baseline(db: Path) -> bool:
    if not db.exists():
        return False
    with SqliteStore(db) as store:
        return store.load(CLUSTER)[0] is not None


def _integrity(db: Path) -> list[str]:
    with SqliteStore(db) as store:
        return store.check_integrity()


class Churn:
    """Changes the simulated cluster: tags flip between two values, stopped guests start."""

    def __init__(self, sim: SimServer, rng: random.Random) -> None:
        self.sim, self.rng = sim, rng
        with control(sim) as c:
            rows = c.get("/resources").json()
        self.guests = sorted(r["id"] for r in rows if r["type"] in ("qemu", "lxc"))
        self.stopped = [r["id"] for r in rows if r.get("status") == "stopped"]
        self.tags = dict.fromkeys(self.guests, "red")

    def step(self) -> None:
        with control(self.sim) as c:
            if self.stopped and self.rng.random() < 0.2:
                guest = self.stopped.pop()
                c.patch(f"/resources/{guest}", json={"status": "running"}).raise_for_status()
                return
            guest = self.rng.choice(self.guests)
            self.tags[guest] = "blue" if self.tags[guest] == "red" else "red"
            c.patch(f"/resources/{guest}", json={"tags": self.tags[guest]}).raise_for_status()


def test_kill_9_at_random_moments_loses_nothing_and_doubles_nothing(
    tmp_path: Path, figures: Figures
) -> None:
    iterations = figures.scaled(5, 60)
    rng = random.Random(9)
    db = tmp_path / "state.db"
    hook = Receiver().up()
    with simulator(guests=24, seed=9) as sim:
        config = _write_config(tmp_path, sim, hook)
        churn = Churn(sim, rng)
        proc = _start(config, tmp_path)
        wait_for(lambda: _baseline(db), what="the baseline")
        for i in range(iterations):
            if i:
                proc = _start(config, tmp_path)
            deadline = time.monotonic() + rng.uniform(0.2, 2.5)
            while time.monotonic() < deadline:
                churn.step()
                time.sleep(rng.uniform(0.02, 0.3))  # the timing of faults, not a wait
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            assert _integrity(db) == [], f"kill {i + 1}: the database is damaged"
        served = polls_served(sim)
        proc = _start(config, tmp_path)
        try:
            wait_for(lambda: polls_served(sim) > served + 1, what="the last process to poll")
            churn.step()

            def all_sent() -> bool:
                wanted = {e.id for e in _stored(db) if e.suppressed is None}
                logged = {e["id"] for e in read_events(tmp_path / "events.jsonl")}
                return wanted <= logged and wanted <= hook.delivered_ids()

            wait_for(all_sent, timeout=60, what="every stored event in the log")
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0, (tmp_path / "stderr.log").read_text()
            hook.down()
    stored = {e.id: e for e in _stored(db)}
    logged = read_events(tmp_path / "events.jsonl")
    _check(stored, logged)
    bodies: dict[str, bytes] = {}
    for request in hook.delivered():  # at least once, and the same bytes every time
        assert bodies.setdefault(request.headers["webhook-id"], request.body) == request.body
    assert set(bodies) == {e["id"] for e in logged}
    assert _integrity(db) == []
    figures.add("kills_survived", iterations)
    figures.add("events_checked", len(stored))
    figures.measure("redelivered_after_kill_9", len(logged) - len({e["id"] for e in logged}))
    figures.measure("webhook_redelivered_after_kill_9", len(hook.delivered()) - len(bodies))


def _check(stored: dict[str, Event], logged: list[dict[str, Any]]) -> None:
    sendable = {i for i, e in stored.items() if e.suppressed is None}
    assert {e["id"] for e in logged} == sendable, "an event was lost or invented"
    for entry in logged:  # a redelivered event is byte-for-byte the same event
        assert entry == stored[entry["id"]].to_dict()
    assert len(stored) > 10, "the loop produced suspiciously few events"
    # No transition under two ids: per guest, each tag change starts where the last ended,
    # and each guest started at most once.
    chains: dict[str, list[tuple[str, object, object]]] = {}
    started: list[str] = []
    for e in sorted(stored.values(), key=lambda e: e.time):
        if e.change is not None and e.resource is not None and e.change.field == "tags":
            chains.setdefault(e.resource.id, []).append((e.id, e.change.old, e.change.new))
        elif e.type == "guest.started" and e.resource is not None:
            started.append(e.resource.id)
    for guest, chain in chains.items():
        for (_, _, before), (event_id, old, _) in itertools.pairwise(chain):
            assert old == before, f"{guest}: {event_id} repeats or skips a tag change"
    assert len(started) == len(set(started)), "a start was reported twice"
