"""A `kill -9` in the middle of commit_poll loses no committed poll and tears none."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from pvewatch.model import SourceHealth
from pvewatch.store.sqlite import SqliteStore

from .builders import T0

REPO = Path(__file__).resolve().parents[2]
SINKS = ("a", "b")
EVENTS_PER_POLL = 3

# Poll k sets every resource's status to "s<k>" and the health's failure count to k, so a
# torn poll would show as mixed statuses or a count that disagrees with the snapshot.
CHILD = """
import sys
from dataclasses import replace
from datetime import timedelta
from pvewatch.model import Resource, Snapshot, SourceHealth
from pvewatch.store.sqlite import SqliteStore
from tests.store.builders import T0, event

with SqliteStore(sys.argv[1]) as store:
    for k in range(1, 100_000):
        res = {f"qemu/{i}": Resource(f"qemu/{i}", "qemu", status=f"s{k}") for i in range(300)}
        events = [replace(event(k * 10 + i), id=f"evt_{k}_{i}") for i in range(int(sys.argv[2]))]
        store.commit_poll(
            "prod", snapshot=Snapshot("prod", res, T0 + timedelta(seconds=k)),
            events=events, sinks=sys.argv[3:], health=SourceHealth(consecutive_failures=k),
        )
        print(k, flush=True)
"""


def _run_and_kill(db: Path, polls: int) -> int:
    """Start the child, SIGKILL it once `polls` polls are committed; the last one seen."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), str(EVENTS_PER_POLL), *SINKS],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    seen = 0
    deadline = time.monotonic() + 10
    try:
        while seen < polls and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            seen = int(line)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    assert seen >= polls, "the child did not commit enough polls"
    return seen


def test_kill_9_mid_commit_keeps_every_committed_poll_whole(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    seen = _run_and_kill(db, polls=25)
    with SqliteStore(db) as store:
        assert store.check_integrity() == []
        snap, health = store.load("prod")
        assert snap is not None
        last = health.consecutive_failures
        # Every poll it reported is there; at most the one in flight committed after it.
        assert last in (seen, seen + 1)
        assert snap.taken_at == T0 + timedelta(seconds=last)
        assert {r.status for r in snap.resources.values()} == {f"s{last}"}
        assert len(snap.resources) == 300
        expected = [f"evt_{k}_{i}" for k in range(1, last + 1) for i in range(EVENTS_PER_POLL)]
        assert [e.id for e in store.events(limit=10_000)] == expected
        for sink in SINKS:
            assert [i.event.id for i in store.due(sink, T0, limit=10_000)] == expected
        # The store still works after the crash.
        store.commit_poll("prod", snapshot=None, events=[], sinks=SINKS, health=SourceHealth())
