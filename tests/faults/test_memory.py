"""Memory stays flat while the API keeps failing: many failed polls in one process
(refused connections, 5xx, broken bodies, empty answers, resets) through the real client,
pipeline and store. Python allocations are traced (tracemalloc); RSS is read from /proc."""

from __future__ import annotations

import gc
import logging
import os
import socket
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from pvewatch.pipeline import ClusterWatcher
from pvewatch.pve.client import PveClient
from pvewatch.store.sqlite import SqliteStore
from tests.e2e.harness import control, simulator
from tests.faults.figures import Figures
from tests.faults.rig import body, fault, hand_watcher, pinned_cluster, status

WARMUP = 40
FAULTS = [status(500, 1), fault("garbage", 1), fault("reset", 1), body('{"data": []}')]
# Python memory may grow by this much over the second half of the run (objects in flight,
# caches); a leak of one small object per poll shows in the soak run.
MAX_TRACED_GROWTH = 128 * 1024


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _quiet_logger() -> logging.Logger:
    # Not propagated: pytest's log capture would keep every record and grow by itself.
    logger = logging.getLogger("pvewatch.faults.memory")
    logger.propagate = False
    logger.addHandler(logging.NullHandler())
    return logger


@pytest.fixture
def dead_endpoint() -> Iterator[str]:
    """A bound port nobody listens on: every connection is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"https://127.0.0.1:{sock.getsockname()[1]}"


async def test_failed_polls_do_not_grow_memory(
    tmp_path: Path, dead_endpoint: str, figures: Figures
) -> None:
    polls = figures.scaled(120, 5000)
    log = _quiet_logger()
    with simulator() as sim, SqliteStore(tmp_path / "state.db") as store:
        cluster = pinned_cluster("leak", sim, dead_endpoint, sim.url)
        async with PveClient(cluster, logger=log, min_interval_secs=0) as client:
            watcher = hand_watcher(cluster, client, store, logger=log)
            assert (await watcher.poll()).ok  # a baseline, so that empty answers are refused
            with control(sim) as c:
                c.post("/faults", json=FAULTS * ((polls + WARMUP) // len(FAULTS) + 1))
                for _ in range(WARMUP):
                    assert not (await watcher.poll()).ok
                tracemalloc.start(1)
                try:
                    # Two halves: a leak grows in both; caches and in-flight objects do not.
                    first = await _measure(watcher, polls // 2)
                    second = await _measure(watcher, polls - polls // 2)
                finally:
                    tracemalloc.stop()
                c.delete("/faults")
            events = store.events(limit=10)
    assert [e.type for e in events] == ["source.unreachable"]
    figures.add("faults_injected", (WARMUP + polls) * 2)  # a refused endpoint and a bad answer
    figures.add("polls", WARMUP + polls)
    figures.measure(f"traced_growth_bytes_first_{polls // 2}_failed_polls", first[0])
    figures.measure(f"traced_growth_bytes_next_{polls - polls // 2}_failed_polls", second[0])
    figures.measure(f"rss_growth_bytes_over_{polls}_failed_polls", first[1] + second[1])
    assert second[0] < MAX_TRACED_GROWTH, f"{second[0]} bytes more after {polls // 2} polls"
    assert first[1] + second[1] < 32 * 1024**2


async def _measure(watcher: ClusterWatcher, polls: int) -> tuple[int, int]:
    """Growth of traced Python memory and of RSS over `polls` failed polls."""
    gc.collect()
    traced, rss = tracemalloc.get_traced_memory()[0], _rss_bytes()
    for _ in range(polls):
        assert not (await watcher.poll()).ok
    gc.collect()
    return tracemalloc.get_traced_memory()[0] - traced, _rss_bytes() - rss
