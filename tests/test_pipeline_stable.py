"""A source that gives StableRows (the PVE client's typed decode): the same polls as with
dicts, and dicts whenever a threshold is to read the counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pvewatch.config.rules import RulesConfig, Threshold
from pvewatch.config.shape import ShapeConfig
from pvewatch.pipeline import ClusterWatcher, PollResult
from pvewatch.store.sqlite import SqliteStore
from pvewatch.watch.rows import StableRows
from tests.test_pipeline import VM, Clock, FakeSource
from tests.watch.test_rows import stable

NODE: dict[str, Any] = {"id": "node/pve1", "type": "node", "node": "pve1", "status": "online"}
PLAIN = RulesConfig(shape=ShapeConfig(hold_secs={}, flapping=None))
HOT = RulesConfig(
    shape=ShapeConfig(hold_secs={}, flapping=None),
    thresholds={"cpu": Threshold(trigger=0.5, clear=0.4, for_secs=0)},
)
POLLS: list[list[dict[str, Any]]] = [
    [{**VM, "status": "running", "cpu": 0.9, "maxcpu": 2}, NODE],
    [{**VM, "status": "running", "cpu": 0.1, "maxcpu": 2}, NODE],  # quiet
    [{**VM, "status": "stopped", "cpu": 0.9, "maxcpu": 2}, NODE],
    [{**VM, "status": "stopped"}],  # no node: implausible
    [],  # empty: implausible
    [{**VM, "status": "stopped", "pool": None}, NODE],
]


@dataclass
class StableSource(FakeSource):
    calls: list[str] = field(default_factory=list)

    async def resources(self, type: str | None = None) -> list[dict[str, Any]]:
        self.calls.append("resources")
        return await super().resources(type)

    async def stable_resources(self) -> StableRows | list[dict[str, Any]]:
        self.calls.append("stable_resources")
        return stable(await super().resources())


def watcher(source: FakeSource, store: Any, rules: RulesConfig) -> ClusterWatcher:
    return ClusterWatcher(
        cluster="lab",
        interval_secs=10,
        failure_threshold=2,
        source=source,
        store=store,
        sinks=["log"],
        clock=Clock(),
        rules=rules,
    )


async def run(source: FakeSource, rules: RulesConfig) -> list[tuple[Any, ...]]:
    seen = []
    with SqliteStore(":memory:") as store:
        w = watcher(source, store, rules)
        for rows in POLLS:
            source.rows = rows
            result: PollResult = await w.poll()
            events = [(e.type, e.resource and e.resource.id) for e in result.events]
            seen.append((result.ok, result.error, events, repr(w.snapshot)))
    return seen


async def test_stable_rows_give_the_polls_that_dicts_give() -> None:
    source = StableSource([])
    assert await run(source, PLAIN) == await run(FakeSource([]), PLAIN)
    assert source.calls == ["stable_resources"] * len(POLLS)


async def test_thresholds_read_the_counters_from_dicts() -> None:
    source = StableSource([])
    polls = await run(source, HOT)
    assert polls == await run(FakeSource([]), HOT)
    assert source.calls == ["resources"] * len(POLLS)
    assert any("threshold" in str(events) for _, _, events, _ in polls)
