"""The disk misbehaves: the store refuses commits (read-only, full, I/O error), the disk
really fills up (a small tmpfs), another process holds the database's write lock, and the
state directory cannot be written at start. Expected: a clear error naming the store, no
event lost (the changes made meanwhile are committed once the disk is back), no crash.
Crash-safety of one commit: tests/store/test_crash.py."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from pvewatch.config import StoreConfig
from pvewatch.errors import StoreError
from pvewatch.pipeline import ClusterWatcher
from pvewatch.pve.client import PveClient
from pvewatch.simulator.server import SimServer
from pvewatch.store import SqliteStore, Store
from tests.e2e.harness import simulator
from tests.faults.figures import Figures
from tests.faults.rig import fault_config, hand_watcher, pinned_cluster, watching
from tests.faults.support import mounted, start_guest, types

SINK = "events"


class FailingStore:
    """A real store whose commits fail with `error` while it is set."""

    def __init__(self, inner: SqliteStore) -> None:
        self.inner = inner
        self.error: str | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def commit_poll(self, cluster: str, **poll: Any) -> None:
        if self.error is not None:
            raise StoreError(f"state store {self.inner}: commit poll failed: {self.error}")
        self.inner.commit_poll(cluster, **poll)


@asynccontextmanager
async def _watcher(sim: SimServer, store: Store) -> AsyncIterator[ClusterWatcher]:
    cluster = pinned_cluster("disk", sim, source_failure_threshold=2)
    async with PveClient(cluster, min_interval_secs=0) as client:
        yield hand_watcher(cluster, client, store)


@pytest.mark.parametrize(
    "error",
    ["attempt to write a readonly database", "database or disk is full", "disk I/O error"],
)
async def test_refused_commits_lose_nothing_and_say_why(
    error: str, tmp_path: Path, figures: Figures, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    with simulator() as sim, SqliteStore(tmp_path / "state.db") as real:
        store = FailingStore(real)
        async with _watcher(sim, cast(Store, store)) as watcher:
            assert (await watcher.poll()).ok
            store.error = error
            guest = start_guest(sim)
            outage = figures.scaled(3, 30)
            for _ in range(outage):
                result = await watcher.poll()
                assert (result.ok, result.error_kind) == (False, "store")
            store.error = None
            assert (await watcher.poll()).ok
            assert (await watcher.poll()).events == []
        events = real.events()
        pending = real.due(SINK, datetime.now(UTC))
    assert types(events) == [("guest.started", guest)]
    assert [item.event.id for item in pending] == [events[0].id], "not queued for delivery"
    refusals = [r.getMessage() for r in caplog.records if "cannot store poll" in r.getMessage()]
    assert len(refusals) == outage
    assert all(error in message for message in refusals)
    figures.add("faults_injected", outage)
    figures.add("polls", outage + 3)
    figures.add("events_checked", len(events))


# --- real faults: root only (mount), skipped elsewhere --------------------------------


def _fill(directory: Path) -> Path:
    """Fill the file system of `directory` to the last byte; the filler file."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as out:
        for chunk in (1 << 16, 1 << 12, 1 << 9, 1):
            try:
                while True:
                    out.write(b"\0" * chunk)
            except OSError:
                continue
    return filler


async def test_a_full_disk_fails_commits_and_readyz_and_loses_nothing_once_freed(
    tmp_path: Path, figures: Figures, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    state = tmp_path / "state"
    state.mkdir()
    with mounted(state, "-t", "tmpfs", "-o", "size=4m", "tmpfs"), simulator(guests=30) as sim:
        config = fault_config(sim, tmp_path)
        config = dataclasses.replace(config, store=StoreConfig(path=state / "state.db"))
        async with watching(sim, config, serve_http=True) as rig:
            assert (await rig.poll()).ok
            assert rig.ready()[0] == 200
            filler = _fill(state)
            guests = [start_guest(sim) for _ in range(3)]
            result = await rig.poll()
            assert (result.ok, result.error_kind) == (False, "store")
            status, body = rig.ready()
            assert status == 503, body
            assert "the last commit failed" in body
            filler.unlink()
            assert (await rig.poll()).ok
            assert rig.ready()[0] == 200
            await rig.deliver()
            events, sent = rig.stored(), rig.sent()
            problems = rig.runtime.store.check_integrity()
    assert types(events) == sorted(("guest.started", g) for g in guests)
    assert sorted(e["id"] for e in sent) == sorted(e.id for e in events)
    assert problems == []
    assert "database or disk is full" in caplog.text
    assert str(state / "state.db") in caplog.text
    figures.add("faults_injected")
    figures.add("events_checked", len(events))


_HOLD_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""


async def test_a_database_locked_by_another_process_fails_polls_until_released(
    tmp_path: Path, figures: Figures, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    db = tmp_path / "state.db"
    with simulator() as sim, SqliteStore(db, busy_timeout_secs=0.5) as store:
        async with _watcher(sim, store) as watcher:
            assert (await watcher.poll()).ok
            holder = subprocess.Popen(
                [sys.executable, "-c", _HOLD_LOCK, str(db)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            try:
                assert holder.stdout is not None
                assert holder.stdout.readline().strip() == "locked"
                guest = start_guest(sim)
                for _ in range(2):
                    result = await watcher.poll()
                    assert (result.ok, result.error_kind) == (False, "store")
            finally:
                holder.communicate("", timeout=10)
            assert (await watcher.poll()).ok
            assert (await watcher.poll()).events == []
        events = store.events()
    assert types(events) == [("guest.started", guest)]
    assert "database is locked" in caplog.text
    figures.add("faults_injected", 2)
    figures.add("events_checked", len(events))
