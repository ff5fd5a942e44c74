"""`kill -9` of `pvewatch run` at arbitrary moments never loses an event."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from pvewatch.model import Event
from pvewatch.store.sqlite import SqliteStore
from tests.e2e.harness import TOKEN, control, polls_served, read_events, simulator, wait_for

ITERATIONS = 6


def _write_config(tmp: Path, url: str, fingerprint: str) -> Path:
    (tmp / "token").write_text(TOKEN + "\n")
    config = {
        "clusters": [
            {
                "name": "crash",
                "endpoints": [url],
                "token_file": str(tmp / "token"),
                "tls": {"fingerprint": fingerprint},
                "interval_secs": 1,
                "timeout_secs": 2,
            }
        ],
        "store": {"path": str(tmp / "state.db")},
        "http": {"listen": "127.0.0.1:0"},  # any free port: a real pvewatch may hold 9886
        # Every transition is sent at once, so every stored event must reach the log.
        "rules": {"shape": {"hold": False, "flapping": False}},
        "sinks": {"events": {"type": "log", "format": "json", "path": str(tmp / "events.jsonl")}},
    }
    path = tmp / "watch.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def baseline_recorded(db: Path) -> bool:
    if not db.exists():
        return False
    with SqliteStore(db) as store:
        return store.load("crash")[0] is not None


def store_events(db: Path) -> list[Event]:
    with SqliteStore(db) as store:
        return store.events(limit=100_000)


def _start(config: Path, tmp: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pvewatch", "run", "-c", str(config), "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "stderr.log").open("ab"),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_kill_9_loses_no_event(tmp_path: Path) -> None:
    rng = random.Random(42)
    with simulator(guests=12) as sim:
        assert sim.fingerprint
        config = _write_config(tmp_path, sim.url, sim.fingerprint)
        with control(sim) as c:
            rows = c.get("/resources").json()
        status = {r["id"]: r["status"] for r in rows if r["type"] in ("qemu", "lxc")}
        guests = sorted(status)

        def flip(guest: str) -> None:
            status[guest] = "stopped" if status[guest] == "running" else "running"
            with control(sim) as c:
                c.patch(f"/resources/{guest}", json={"status": status[guest]})

        # A baseline first, so every later change is an event, found live or late.
        proc = _start(config, tmp_path)
        wait_for(lambda: baseline_recorded(tmp_path / "state.db"), what="the baseline")
        for i in range(ITERATIONS):
            if i:
                proc = _start(config, tmp_path)
            # Change the cluster while the watcher runs, then kill it at a random moment:
            # during start-up, a poll, the store transaction or a delivery.
            deadline = time.monotonic() + rng.uniform(0.3, 2.5)
            while time.monotonic() < deadline:
                flip(rng.choice(guests))
                time.sleep(rng.uniform(0.05, 0.4))  # fault injection timing, not a wait
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)

        served = polls_served(sim)
        proc = _start(config, tmp_path)
        try:
            wait_for(lambda: polls_served(sim) > served, what="the restarted watcher to poll")
            before = {e.id for e in store_events(tmp_path / "state.db")}
            flip(guests[0])  # one change the last process must see

            def all_delivered() -> bool:
                stored = store_events(tmp_path / "state.db")
                logged = {e["id"] for e in read_events(tmp_path / "events.jsonl")}
                seen = any(
                    e.resource and e.resource.id == guests[0] and e.id not in before for e in stored
                )
                return seen and {e.id for e in stored} <= logged

            wait_for(all_delivered, timeout=60, what="every stored event in the log")
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0, (tmp_path / "stderr.log").read_text()

    with SqliteStore(tmp_path / "state.db") as store:
        stored = {e.id: e for e in store.events(limit=100_000)}
    logged = read_events(tmp_path / "events.jsonl")
    assert {e["id"] for e in logged} == set(stored), "an event was lost or invented"
    for entry in logged:  # a redelivered event is byte-for-byte the same event
        assert entry == stored[entry["id"]].to_dict()
    assert len(stored) > ITERATIONS // 2, "the loop produced suspiciously few events"
    # No transition is reported twice under two ids: per guest, each status event starts
    # where the previous one ended.
    by_guest: dict[str, list[tuple[str, object, object]]] = {}
    for e in sorted(stored.values(), key=lambda e: e.time):
        if e.change and e.change.field == "status" and e.resource:
            by_guest.setdefault(e.resource.id, []).append((e.id, e.change.old, e.change.new))
    for guest, chain in by_guest.items():
        for (_, _, prev_new), (event_id, old, _) in itertools.pairwise(chain):
            assert old == prev_new, f"{guest}: {event_id} repeats or skips a transition"
