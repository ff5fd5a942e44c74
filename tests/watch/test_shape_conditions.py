"""Resolved pairs and reminders; the shaping state is data, never a reason to fail."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pvewatch.config.shape import ShapeConfig
from pvewatch.model import (
    Cause,
    Change,
    Event,
    Resource,
    ResourceRef,
    Severity,
    Snapshot,
    SourceHealth,
)
from pvewatch.watch.health import poll_failed, poll_succeeded
from pvewatch.watch.shape.steps import shape
from tests.watch.shape_cluster import (
    CLUSTER,
    NO_HOLDS,
    Run,
    at,
    cluster,
    guest,
    node,
    poll_input,
    storage,
    with_status,
)

LAB = cluster(node("pve1"), node("pve2"), guest(100), guest(101, "pve2"), storage("pve1"))


@pytest.mark.parametrize(
    ("rid", "bad", "good", "condition", "pair"),
    [
        ("qemu/100", "stopped", "running", "guest.stopped:qemu/100",
         ("guest.stopped", "guest.started")),
        ("qemu/100", "io-error", "running", "guest.status_changed:qemu/100",
         ("guest.status_changed", "guest.resumed")),
        ("qemu/100", "internal-error", "running", "guest.status_changed:qemu/100",
         ("guest.status_changed", "guest.resumed")),
        ("qemu/100", "guest-panicked", "running", "guest.status_changed:qemu/100",
         ("guest.status_changed", "guest.resumed")),
        ("node/pve2", "offline", "online", "node.offline:node/pve2",
         ("node.offline", "node.online")),
        ("storage/pve1/local", "unavailable", "available", "storage.unavailable:storage/pve1/local",
         ("storage.unavailable", "storage.available")),
    ],
)  # fmt: skip
def test_a_problem_and_its_end_pair_up(
    rid: str, bad: str, good: str, condition: str, pair: tuple[str, str]
) -> None:
    run = Run(NO_HOLDS)
    run.poll(0, LAB)
    run.poll(10, with_status(LAB, **{rid: bad}))
    run.poll(20, with_status(LAB, **{rid: good}))
    firing, ending = run.sent(resource=rid)
    assert (firing.type, ending.type) == pair
    assert firing.condition == condition
    assert ending.resolves == firing.id
    assert ending.condition == condition  # the same alert, resolved
    assert run.state["conditions"] == {}


def test_a_stop_someone_meant_is_no_problem() -> None:
    run = Run(NO_HOLDS)
    run.poll(0, LAB)
    user = Cause("user", "UPID:pve1:...:qmstop:100:alice@pve:", "alice@pve")
    stopped = with_status(LAB, **{"qemu/100": "stopped"})
    now = at(10)
    raw = Event(
        "evt_stop", "guest.stopped", now, CLUSTER, Severity.INFO, "VM 100 stopped by alice@pve",
        ResourceRef.of(stopped["qemu/100"]), Change("status", "running", "stopped"), user,
    )  # fmt: skip
    out, state = shape(
        [raw], poll_input(run.snapshot, _snap(stopped, 10)), NO_HOLDS, run.state, now
    )
    assert out[0].condition is None
    assert state["conditions"] == {}


def _snap(resources: dict[str, Resource], secs: float) -> Snapshot:
    return Snapshot(CLUSTER, resources, at(secs))


def test_a_resolution_pairs_up_across_a_restart() -> None:
    run = Run(NO_HOLDS)
    run.poll(0, LAB)
    run.poll(10, with_status(LAB, **{"node/pve2": "offline"}))
    restarted = Run(NO_HOLDS, state=json.loads(json.dumps(run.state)), snapshot=run.snapshot)
    restarted.poll(600, LAB, late=True)
    (online,) = [e for e in restarted.sent() if e.type == "node.online"]
    assert online.resolves == run.sent()[0].id


def test_a_removed_guest_ends_its_problem() -> None:
    run = Run(NO_HOLDS)
    run.poll(0, LAB)
    run.poll(10, with_status(LAB, **{"qemu/100": "stopped"}))
    gone = {rid: r for rid, r in LAB.items() if rid != "qemu/100"}
    run.poll(20, gone)
    stop, removed = run.sent(resource="qemu/100")
    assert removed.resolves == stop.id


def test_source_unreachable_and_recovered_pair_up() -> None:
    run = Run(NO_HOLDS)
    run.poll(0, LAB)
    health = SourceHealth()
    recorded: list[Event] = []
    for t in (10, 20, 30):
        health, events = poll_failed(health, CLUSTER, "unreachable", 3, at(t))
        recorded += run.failed(t, events)
    health, events = poll_succeeded(health, CLUSTER, at(40))
    (recovered,) = run.poll(40, LAB, extra=events)
    unreachable = next(e for e in recorded if e.type == "source.unreachable")
    assert unreachable.condition == "source.unreachable"
    assert recovered.type == "source.recovered"
    assert recovered.resolves == unreachable.id
    assert run.state["conditions"] == {}


def test_thresholds_pair_up_by_resource_and_metric() -> None:
    run = Run(NO_HOLDS)
    run.poll(0, LAB)
    ref = ResourceRef.of(LAB["qemu/100"])

    def usage(type_: str, metric: str, secs: float) -> Event:
        return Event(
            f"evt_{type_}_{metric}_{secs}", type_, at(secs), CLUSTER, Severity.WARNING, type_,
            ref, Change(metric, None, 0.9), details={"metric": metric},
        )  # fmt: skip

    run.poll(10, LAB, extra=[usage("guest.threshold_exceeded", "cpu", 10)])
    run.poll(20, LAB, extra=[usage("guest.threshold_exceeded", "memory", 20)])
    run.poll(30, LAB, extra=[usage("guest.threshold_cleared", "cpu", 30)])
    cpu, _memory, cleared = run.sent()
    assert cpu.condition == "guest.threshold_exceeded:qemu/100|cpu"
    assert cleared.resolves == cpu.id
    assert list(run.state["conditions"]) == ["guest.threshold_exceeded:qemu/100|memory"]


def test_reminders_repeat_an_open_problem_while_it_lasts() -> None:
    run = Run(ShapeConfig(hold_secs={}, flapping=None, repeat_interval_secs=60))
    down = with_status(LAB, **{"node/pve2": "offline"})
    run.poll(0, LAB)
    for t in range(10, 200, 10):
        run.poll(t, down)
    run.poll(200, LAB)
    sent = run.sent()
    assert [e.type for e in sent] == ["node.offline"] * 4 + ["node.online"]
    first, *reminders, online = sent
    assert [e.details["reminder"] for e in reminders] == [1, 2, 3]
    assert [e.time for e in reminders] == [at(70), at(130), at(190)]
    assert all(e.details["first_event"] == first.id for e in reminders)
    assert all(e.condition == first.condition for e in reminders)
    assert reminders[0].summary.startswith("still: node pve2 went offline")
    assert online.resolves == first.id


def test_no_reminders_about_a_guest_on_an_offline_node_nor_during_a_source_outage() -> None:
    run = Run(ShapeConfig(hold_secs={}, flapping=None, repeat_interval_secs=30))
    run.poll(0, LAB)
    run.poll(10, with_status(LAB, **{"qemu/101": "stopped"}))
    outage = with_status(LAB, **{"qemu/101": "stopped", "node/pve2": "offline"})
    run.poll(20, outage)
    for t in range(30, 100, 10):
        run.failed(t)  # the API is unreachable: nothing is known, nothing is reminded
    for t in range(100, 200, 10):
        run.poll(t, outage)
    reminders = [e for e in run.sent() if e.details.get("reminder")]
    assert {e.type for e in reminders} == {"node.offline"}  # not guest 101's guest.down
    assert all(e.time >= at(100) for e in reminders)


@pytest.mark.parametrize(
    "state",
    [
        None,
        {"pending": "x", "flapping": [1], "outages": {"pve1": {"since": 3}}, "quorum": 5},
        {"conditions": {"k": {"event": {"id": 1}}}, "pending": {"k": {"due": "soon"}}},
        {"outages": {"pve1": {"since": "2026-11-28T03:00:00Z", "members": [{"x": 1}]}}},
    ],
)
def test_a_damaged_state_costs_what_is_damaged_never_the_poll(state: Any) -> None:
    run = Run(NO_HOLDS)
    run.poll(0, LAB)
    run.state = state
    run.poll(10, with_status(LAB, **{"qemu/100": "stopped"}))
    assert run.sent_types() == ["guest.stopped"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(junk=st.dictionaries(
    st.sampled_from(["pending", "flapping", "outages", "quorum", "conditions"]),
    st.dictionaries(st.sampled_from(["qemu/100|status", "qemu/100", "pve2", "k"]), json_values)
    | json_values,
))  # fmt: skip
def test_any_json_state_is_survived(junk: dict[str, Any]) -> None:
    run = Run(ShapeConfig(repeat_interval_secs=10))
    run.poll(0, LAB)
    run.state = junk
    run.poll(10, with_status(LAB, **{"qemu/100": "stopped", "node/pve2": "offline"}))
    run.poll(100, LAB)
    assert "guest.stopped" in {e.type for e in run.recorded}
