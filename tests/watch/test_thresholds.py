"""Usage thresholds: ratios from raw rows, hysteresis, hold, state across polls."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pvewatch.config.rules import Threshold
from pvewatch.watch import thresholds

from .rows import NOW, Row, ct, node, snap, storage, vm

CPU = Threshold(trigger=0.9, clear=0.8, for_secs=60)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            vm(cpu=0.5, mem=4, maxmem=8, disk=0, maxdisk=10, uptime=100),
            {"cpu": 0.5, "memory": 0.5, "uptime": 100.0},
        ),
        (
            ct(cpu=0.25, mem=1, maxmem=4, disk=3, maxdisk=4, uptime=5),
            {"cpu": 0.25, "memory": 0.25, "disk": 0.75, "uptime": 5.0},
        ),
        (vm(status="stopped", cpu=0, mem=0, uptime=0), {"uptime": 0.0}),
        (
            node(cpu=0.1, mem=32, maxmem=64, disk=1, maxdisk=4),
            {"cpu": 0.1, "memory": 0.5, "disk": 0.25, "uptime": 1884312.0},
        ),
        (node(status="offline", uptime=None), {}),
        (storage(disk=90, maxdisk=100), {"storage": 0.9}),
        (storage(status="unknown", disk=None, maxdisk=None), {}),
        (vm(cpu="x", mem=True, maxmem=0, uptime=-1), {}),
        (vm(cpu=float("nan"), mem=1, maxmem=float("inf")), {"uptime": 864000.0}),
    ],
)
def test_usage_from_raw_rows(row: Row, expected: dict[str, float]) -> None:
    assert thresholds.usage([row]) == ({row["id"]: expected} if expected else {})


def test_usage_skips_rows_it_cannot_use() -> None:
    garbage: list[Any] = [None, [], {"id": 5}, {"type": "qemu"}]
    assert thresholds.usage(garbage) == {}


@pytest.mark.parametrize(
    ("was", "value", "stamp", "expected"),
    [
        ({}, 0.5, 100.0, (False, None, False)),
        ({}, 0.95, 100.0, (False, 100.0, False)),
        ({"since": 100.0}, 0.95, 159.0, (False, 100.0, False)),
        ({"since": 100.0}, 0.95, 160.0, (True, None, True)),
        ({"since": 100.0}, 0.85, 160.0, (False, None, False)),  # dipped: start over
        ({"since": 100.0}, None, 160.0, (False, None, False)),  # no number: start over
        ({"firing": True}, 0.85, 200.0, (True, None, False)),  # between clear and trigger
        ({"firing": True}, 0.8, 200.0, (True, 200.0, False)),
        ({"firing": True, "since": 200.0}, 0.7, 260.0, (False, None, True)),
        ({"firing": True}, None, 200.0, (True, None, False)),
        ({"firing": "junk", "since": "junk"}, 0.5, 1.0, (False, None, False)),
    ],
)
def test_step(
    was: dict[str, Any],
    value: float | None,
    stamp: float,
    expected: tuple[bool, float | None, bool],
) -> None:
    assert thresholds.step(was, value, CPU, stamp) == expected


def test_for_secs_zero_fires_at_once() -> None:
    now = Threshold(0.9, 0.8, 0)
    assert thresholds.step({}, 0.9, now, 5.0) == (True, None, True)


def series(values: Sequence[float | None], config: dict[str, Threshold]) -> list[tuple[str, str]]:
    """One VM polled every 30 s with these cpu values; the events, in order."""
    state: Any = None
    out = []
    for i, value in enumerate(values):
        now = NOW + timedelta(seconds=30 * i)
        snapshot = snap([vm(), node()], now)
        metrics = {} if value is None else {"qemu/100": {"cpu": value}}
        events, state = thresholds.evaluate(snapshot, metrics, state, config, now)
        state = json.loads(json.dumps(state))
        out += [(e.type, e.summary) for e in events]
    return out


def test_exceeded_after_its_hold_then_cleared_after_its_hold() -> None:
    values = [0.5, 0.95, 0.95, 0.97, 0.85, 0.95, 0.7, 0.7, 0.7]
    assert series(values, {"cpu": CPU}) == [
        (
            "guest.threshold_exceeded",
            "VM 100 (web1) cpu usage 97%, at or above 90% for 60s",
        ),
        (
            "guest.threshold_cleared",
            "VM 100 (web1) cpu usage 70%, back at or below 80% for 60s",
        ),
    ]


def test_a_spike_shorter_than_the_hold_is_nothing() -> None:
    assert series([0.95, 0.5, 0.95, 0.5, 0.95, 0.5], {"cpu": CPU}) == []


def test_off_by_default() -> None:
    assert series([1.0] * 5, {}) == []


def test_storage_and_node_events() -> None:
    rows = [node(mem=60, maxmem=64), storage(disk=95, maxdisk=100)]
    config = {"memory": Threshold(0.9, 0.8, 0), "storage": Threshold(0.9, 0.85, 0)}
    events, state = thresholds.evaluate(snap(rows), thresholds.usage(rows), None, config, NOW)
    assert [(e.type, e.resource.id if e.resource else None) for e in events] == [
        ("node.threshold_exceeded", "node/pve1"),
        ("storage.threshold_exceeded", "storage/pve1/local-lvm"),
    ]
    assert events[1].summary == "storage local-lvm on pve1 usage 95%, at or above 90%"
    assert events[1].details == {
        "metric": "storage",
        "value": 0.95,
        "trigger": 0.9,
        "clear": 0.85,
        "for_secs": 0,
    }
    assert set(state) == {"node/pve1|memory", "storage/pve1/local-lvm|storage"}


def test_a_resource_that_is_gone_is_forgotten() -> None:
    config = {"cpu": Threshold(0.9, 0.8, 0)}
    _, state = thresholds.evaluate(snap([vm()]), {"qemu/100": {"cpu": 1.0}}, None, config, NOW)
    assert state == {"qemu/100|cpu": {"firing": True}}
    events, state = thresholds.evaluate(snap([node()]), {}, state, config, NOW)
    assert (events, state) == ([], {})


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(0, 1)), max_size=30))
def test_exceeded_and_cleared_alternate(values: list[float | None]) -> None:
    types = [t for t, _ in series(values, {"cpu": CPU})]
    assert all(a != b for a, b in itertools.pairwise(types))
    assert not types or types[0] == "guest.threshold_exceeded"
