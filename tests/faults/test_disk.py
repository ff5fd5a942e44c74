"""The disk misbehaves, for real: the kernel refuses the store's writes (a file size limit,
in a child process: tests/faults/fsize.py), the disk fills up (a 4 MiB tmpfs: root, and
tests.need fails the test under CI=true where it cannot mount), another process holds the
database's write lock. Expected: a clear error naming the store, no event lost (the changes
made meanwhile are committed once the disk is back), no crash. The state directory not
writable at start: test_startup.py; crash-safety of one commit: tests/store/test_crash.py."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from pvewatch.config.types import StoreConfig
from pvewatch.pipeline import ClusterWatcher
from pvewatch.pve.client import PveClient
from pvewatch.simulator.server import SimServer
from pvewatch.store.base import Store
from pvewatch.store.sqlite import SqliteStore
from tests.e2e.harness import simulator
from tests.faults.figures import Figures
from tests.faults.rig import fault_config, hand_watcher, pinned_cluster, watching
from tests.faults.support import mounted, start_guest, types

REPO = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def _watcher(sim: SimServer, store: Store) -> AsyncIterator[ClusterWatcher]:
    cluster = pinned_cluster("disk", sim, source_failure_threshold=2)
    async with PveClient(cluster, min_interval_secs=0) as client:
        yield hand_watcher(cluster, client, store)


# --- real faults, anywhere: a file size limit (RLIMIT_FSIZE) in a child process --------


def test_a_file_system_refusing_writes_fails_commits_and_loses_nothing(
    tmp_path: Path, figures: Figures
) -> None:
    outage = figures.scaled(3, 30)
    done = subprocess.run(
        [sys.executable, "-m", "tests.faults.fsize", str(tmp_path), str(outage)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    child = json.loads(done.stdout.splitlines()[-1])
    assert child["baseline_ok"]
    # The kernel's refusal (EFBIG) as SQLite words it, with the store it concerns.
    assert child["refused"] == [[False, "store", "store: commit failed"]] * outage
    refusals = [line for line in child["errors"] if "cannot store poll" in line]
    assert len(refusals) == outage
    assert all(f"state store {child['db']}:" in line for line in refusals), refusals
    assert all(line.endswith("failed: disk I/O error") for line in refusals), refusals
    # Once writes work again: the change made meanwhile, committed once, queued for delivery.
    assert child["after"] == [[True, 1], [True, 0]]
    assert child["events"] == [["guest.started", child["guest"]]]
    assert child["pending_ids"] == child["event_ids"], "not queued for delivery"
    assert child["integrity_problems"] == []
    figures.add("faults_injected", outage)
    figures.add("polls", outage + 3)
    figures.add("events_checked", len(child["events"]))


# --- a real full disk: root (mount), tests.need elsewhere ------------------------------


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
