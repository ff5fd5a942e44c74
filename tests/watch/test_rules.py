"""apply_rules: the steps together, as the pipeline calls them poll after poll."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from pvewatch.config.rules import RulesConfig, Threshold
from pvewatch.config.shape import ShapeConfig
from pvewatch.model import EVENT_TYPES, Event
from pvewatch.silence import Silence, parse_match
from pvewatch.watch.rule_input import RuleInput
from pvewatch.watch.rules import RULE_EVENT_TYPES, apply_rules, quorum_events

from .rows import NOW, Row, node, vm
from .taskrows import T, rule_input, task

# Shaping off (no holds, no flapping), so what is seen here is this step's own doing.
PLAIN = RulesConfig(shape=ShapeConfig(hold_secs={}, flapping=None))


def apply(
    inp: RuleInput,
    state: dict[str, Any] | None = None,
    config: RulesConfig = PLAIN,
    silences: list[Silence] | None = None,
) -> tuple[list[Event], dict[str, Any]]:
    events, new_state = apply_rules(inp, config, state or {}, silences or [])
    return events, json.loads(json.dumps(new_state))  # what the store keeps


def baseline(rows: list[Row], tasks: Sequence[Row] | None = ()) -> dict[str, Any]:
    events, state = apply(rule_input(None, rows, tasks))
    assert events == []
    return state


def test_rule_event_types_are_in_the_catalogue() -> None:
    assert set(EVENT_TYPES) >= RULE_EVENT_TYPES


def test_the_baseline_emits_nothing_and_marks_the_tasks_history() -> None:
    history = [task("vzdump", i, status="job errors", pid=i) for i in range(100, 125)]
    state = baseline([vm(), node()], history)
    events, _ = apply(rule_input([vm(), node()], [vm(), node()], history), state)
    assert events == []


def test_a_user_stop_is_one_info_event_with_its_cause() -> None:
    rows = [vm(hastate="started"), node()]
    state = baseline(rows)
    stop = task("qmstop", user="alice@pve", start=T - 6, end=T - 4)
    inp = rule_input(rows, [vm(hastate="started", status="stopped"), node()], [stop])
    events, state = apply(inp, state)
    assert [(e.type, e.severity.value, e.summary) for e in events] == [
        ("guest.stopped", "info", "VM 100 (web1) on pve1 stopped by alice@pve")
    ]
    assert events[0].cause is not None
    assert (events[0].cause.kind, events[0].cause.task) == ("user", stop["upid"])
    assert set(state) >= {"tasks", "thresholds", "shape"}


def test_a_crash_of_an_expected_guest_is_critical_and_unplanned() -> None:
    rows = [vm(hastate="started"), node()]
    state = baseline(rows)
    events, _ = apply(rule_input(rows, [vm(hastate="started", status="stopped"), node()]), state)
    assert [(e.type, e.severity.value) for e in events] == [("guest.stopped", "critical")]
    assert events[0].cause is not None
    assert events[0].cause.kind == "unplanned"


def test_a_failed_task_is_reported_once_across_polls() -> None:
    rows = [vm(), node()]
    state = baseline(rows)
    failed = task("vzdump", status="job errors", end=T - 2)
    inp = rule_input(rows, rows, [failed], logs={failed["upid"]: ["INFO: x", "ERROR: y"]})
    events, state = apply(inp, state)
    assert [(e.type, e.details.get("log_tail")) for e in events] == [
        ("task.failed", ["INFO: x", "ERROR: y"])
    ]
    later = rule_input(rows, rows, [failed], now=NOW + timedelta(seconds=10))
    assert apply(later, state)[0] == []


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (True, False, [("cluster.quorum_lost", "critical")]),
        (False, True, [("cluster.quorum_regained", "info")]),
        (True, True, []),
        (None, False, []),
        (True, None, []),
        (False, False, []),
    ],
)
def test_quorum(before: bool | None, after: bool | None, expected: list[tuple[str, str]]) -> None:
    rows = [node(), node("pve2"), node("pve3", status="offline")]
    inp = rule_input(rows, rows, quorate=(before, after))
    assert [(e.type, e.severity.value) for e in quorum_events(inp)] == expected


def test_quorum_lost_says_how_many_nodes_are_online() -> None:
    old = [node(), node("pve2"), node("pve3")]
    new = [node(), node("pve2", status="offline"), node("pve3", status="offline")]
    events = quorum_events(rule_input(old, new, quorate=(True, False)))
    assert [e.summary for e in events] == ["cluster demo lost quorum (1 of 3 nodes online)"]
    assert events[0].resource is None


def test_silences_and_maintenance_apply_to_what_the_rules_add() -> None:
    rows = [vm(tags="maintenance"), node()]
    state = baseline(rows)
    failed = task("vzdump", status="job errors")
    silence = Silence(
        "3", parse_match("type=cluster.*"), NOW - timedelta(hours=1), NOW + timedelta(hours=1)
    )
    inp = rule_input(rows, rows, [failed], quorate=(True, False))
    events, _ = apply(inp, state, silences=[silence])
    assert sorted((e.type, e.suppressed) for e in events) == [
        ("cluster.quorum_lost", "silenced"),
        ("task.failed", "maintenance"),
    ]


def test_thresholds_through_the_rules() -> None:
    config = replace(PLAIN, thresholds={"cpu": Threshold(0.9, 0.8, 0)})
    rows = [vm(), node()]
    state = baseline(rows)
    inp = rule_input(rows, rows, metrics={"qemu/100": {"cpu": 0.99}})
    events, state = apply(inp, state, config)
    assert [e.type for e in events] == ["guest.threshold_exceeded"]
    assert state["thresholds"] == {"qemu/100|cpu": {"firing": True}}


def test_a_failed_poll_keeps_the_task_and_threshold_state() -> None:
    rows = [vm(), node()]
    state = baseline(rows, [task("qmstart")])
    inp = rule_input(rows, rows)
    unreachable = Event(
        "evt_u", "source.unreachable", NOW, "demo", EVENT_TYPES["source.unreachable"].severity, "x"
    )
    failed = replace(
        inp, old=inp.old, new=inp.old or inp.new, events=[unreachable], tasks=None, polled=False
    )
    silence = Silence(
        "1", parse_match("cluster=demo"), NOW - timedelta(hours=1), NOW + timedelta(hours=1)
    )
    events, new_state = apply(failed, state, silences=[silence])
    assert [(e.type, e.suppressed) for e in events] == [("source.unreachable", "silenced")]
    assert new_state["tasks"] == state["tasks"]
    assert new_state.get("thresholds") == state.get("thresholds")
