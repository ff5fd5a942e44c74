"""The heap freezer (lifecycle/heap.py): when it freezes, that a full collection then
skips what was frozen yet still frees cycles made later, that the hourly round frees a
cycle that became garbage among the frozen objects, and that `pvewatch run` freezes after
its first snapshot."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from pvewatch.lifecycle import daemon
from pvewatch.lifecycle.heap import HeapFreezer
from tests.e2e.harness import simulator, watcher_config


class Node:
    """An object in a reference cycle, as the collector alone can free."""

    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test run collects as usual


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def polled(freezer: HeapFreezer, cluster: str, *, ok: bool = True) -> None:
    freezer.poll_finished(
        cluster, ok=ok, duration_secs=0.1, snapshot=None, events=(), error_kind=None
    )


def test_it_freezes_after_each_clusters_first_snapshot_and_then_hourly() -> None:
    clock = Clock()
    freezer = HeapFreezer(every_secs=3600, clock=clock)
    steps: list[tuple[str, bool, float, int]] = [
        # cluster, poll ok, seconds later, freezes so far
        ("a", False, 0, 0),  # a failed poll holds no snapshot
        ("a", True, 0, 1),
        ("a", True, 10, 1),
        ("b", True, 10, 2),  # another cluster's first snapshot
        ("a", True, 3500, 2),
        ("b", True, 100, 3),  # an hour after the last round
        ("a", False, 7200, 3),
        ("a", True, 0, 4),
    ]
    for cluster, ok, later, rounds in steps:
        clock.now += later
        polled(freezer, cluster, ok=ok)
        assert freezer.rounds == rounds, (cluster, ok, later)
    assert gc.get_freeze_count() > 0


def test_a_frozen_heap_is_not_walked_yet_new_cycles_are_freed() -> None:
    kept = [Node() for _ in range(10_000)]
    HeapFreezer().freeze()
    assert gc.get_freeze_count() >= len(kept)
    walked = {id(o) for o in gc.get_objects(2)}
    assert not any(id(n) in walked for n in kept)
    made_later = cycle()
    gc.collect()
    assert made_later() is None


def test_a_cycle_that_became_garbage_while_frozen_is_freed_at_the_next_round() -> None:
    clock = Clock()
    freezer = HeapFreezer(every_secs=3600, clock=clock)
    held = [Node(), Node()]
    held[0].other, held[1].other = held[1], held[0]
    frozen_cycle = weakref.ref(held[0])
    polled(freezer, "a")  # frozen while still in use
    held.clear()  # now garbage, but frozen: a full collection leaves it
    gc.collect()
    assert frozen_cycle() is not None
    clock.now += 3600
    polled(freezer, "a")
    assert frozen_cycle() is None


async def test_pvewatch_run_freezes_after_the_first_snapshot(tmp_path: Path) -> None:
    freezer = HeapFreezer()
    stop = asyncio.Event()
    with simulator() as sim:
        run = asyncio.create_task(
            daemon.run(watcher_config(sim, tmp_path), stop=stop, heap=freezer)
        )
        async with asyncio.timeout(30):
            while freezer.rounds == 0 and not run.done():
                await asyncio.sleep(0.05)
        stop.set()
        assert await run == 0
    assert freezer.rounds == 1
