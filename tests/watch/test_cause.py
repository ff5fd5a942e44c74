"""Cause: which PVE task explains a guest transition, and the severity of a stop."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from pvewatch.config.rules import ExpectRule
from pvewatch.model import Event
from pvewatch.watch import cause

from .rows import NOW, Row, ct, node, vm
from .taskrows import T, history, rule_input, task

HA_STARTED = (ExpectRule(hastate="started"),)


def explained(
    old: list[Row],
    new: list[Row],
    tasks: list[Row] | None,
    expect: tuple[ExpectRule, ...] = HA_STARTED,
) -> list[Event]:
    inp = rule_input(old, new, tasks)
    return cause.explain(inp.events, inp, expect)


def stop(tasks: list[Row] | None, **fields: Any) -> Event:
    """VM 100 stopped between the two polls, with these tasks listed."""
    events = explained([vm(**fields)], [vm(status="stopped", **fields)], tasks)
    assert [e.type for e in events] == ["guest.stopped"]
    return events[0]


STOPS = [
    pytest.param(
        [task("qmstop", user="alice@pve")],
        {},
        ("user", "alice@pve", "qmstop"),
        "VM 100 (web1) on pve1 stopped by alice@pve",
        id="qmstop by a user",
    ),
    pytest.param(
        [task("qmshutdown", user="admin@pam!automation")],
        {},
        ("user", "admin@pam!automation", "qmshutdown"),
        "VM 100 (web1) on pve1 stopped by admin@pam!automation",
        id="a token names itself",
    ),
    pytest.param(
        [],
        {},
        ("unplanned", None, None),
        "VM 100 (web1) on pve1 stopped unexpectedly",
        id="no task: unplanned",
    ),
    pytest.param(
        None,
        {},
        ("unknown", None, None),
        "VM 100 (web1) on pve1 stopped",
        id="no task list: unknown",
    ),
    pytest.param(
        [task("vzdump", end=None, status=None)],
        {"lock": "backup"},
        ("backup", "root@pam", "vzdump"),
        "VM 100 (web1) on pve1 stopped by a backup (vzdump)",
        id="stop-mode backup of that guest",
    ),
    pytest.param(
        [task("vzdump", "", end=None, status=None)],
        {"lock": "backup"},
        ("backup", "root@pam", "vzdump"),
        "VM 100 (web1) on pve1 stopped by a backup (vzdump)",
        id="backup job of the whole node, guest locked for backup",
    ),
    pytest.param(
        [task("vzdump", "", end=None, status=None)],
        {},
        ("unplanned", None, None),
        "VM 100 (web1) on pve1 stopped unexpectedly",
        id="a running backup job does not explain a guest it is not backing up",
    ),
    pytest.param(
        [task("qmstop", 101, user="alice@pve")],
        {},
        ("unplanned", None, None),
        "VM 100 (web1) on pve1 stopped unexpectedly",
        id="another guest's task",
    ),
    pytest.param(
        [task("qmstart", user="alice@pve")],
        {},
        ("unplanned", None, None),
        "VM 100 (web1) on pve1 stopped unexpectedly",
        id="a task that cannot stop a guest",
    ),
    pytest.param(
        [task("qmstop", user="alice@pve", start=T - 400, end=T - 300)],
        {},
        ("unplanned", None, None),
        "VM 100 (web1) on pve1 stopped unexpectedly",
        id="a stop long before the previous poll",
    ),
    pytest.param(
        [task("qmstop", user="alice@pve", start=T - 35, end=T - 25)],
        {},
        ("user", "alice@pve", "qmstop"),
        "VM 100 (web1) on pve1 stopped by alice@pve",
        id="a stop just before the previous poll (pvestatd is late)",
    ),
    pytest.param(
        [task("stopall", "", user="root@pam")],
        {},
        ("user", "root@pam", "stopall"),
        "VM 100 (web1) on pve1 stopped by root@pam",
        id="stop all guests of the node",
    ),
    pytest.param(
        [task("stopall", "", node="pve2")],
        {},
        ("unplanned", None, None),
        "VM 100 (web1) on pve1 stopped unexpectedly",
        id="stop all guests of another node",
    ),
    pytest.param(
        [task("hastop", user="alice@pve"), task("qmshutdown", pid=0x99)],
        {"hastate": "started"},
        ("ha", "alice@pve", "hastop"),
        "VM 100 (web1) on pve1 stopped by HA (hastop, alice@pve)",
        id="HA stop asked by a user",
    ),
    pytest.param(
        history(count=24),
        {},
        ("unplanned", None, None),
        "VM 100 (web1) on pve1 stopped unexpectedly",
        id="a short list covers everything",
    ),
]


@pytest.mark.parametrize(("tasks", "fields", "expected", "summary"), STOPS)
def test_stop_is_joined_with_the_task_that_explains_it(
    tasks: list[Row] | None,
    fields: dict[str, Any],
    expected: tuple[str, str | None, str | None],
    summary: str,
) -> None:
    event = stop(tasks, **fields)
    assert event.cause is not None
    task_type = event.cause.task.split(":")[5] if event.cause.task else None
    assert (event.cause.kind, event.cause.user, task_type) == expected
    assert event.summary == summary


def test_unknown_when_the_list_no_longer_reaches_back_to_the_previous_poll() -> None:
    """After two days down, PVE's 25 newest tasks of the node are all newer than the last
    poll: the stop may have had a task that fell off the list."""
    inp = rule_input([vm()], [vm(status="stopped")], history(), before=NOW - timedelta(days=2))
    [event] = cause.explain(inp.events, inp, HA_STARTED)
    assert event.cause is not None
    assert event.cause.kind == "unknown"
    assert event.summary == "VM 100 (web1) on pve1 stopped"


def test_the_task_is_the_upid_of_the_row() -> None:
    row = task("qmstop", user="alice@pve")
    event = stop([row])
    assert event.cause is not None
    assert event.cause.task == row["upid"]


def test_the_most_telling_task_wins() -> None:
    """A qmstop and a vzdump both cover the window: the stop explains a stop best."""
    rows = [task("vzdump", pid=1, end=None, status=None), task("qmstop", user="bob@pve", pid=2)]
    event = stop(rows, lock="backup")
    assert event.cause is not None
    assert (event.cause.kind, event.cause.user) == ("user", "bob@pve")


def test_migration_names_who_moved_it() -> None:
    rows = [task("qmigrate", user="root@pam", end=T - 2)]
    events = explained([vm()], [vm(node="pve2")], rows)
    assert [(e.type, e.summary) for e in events] == [
        ("guest.migrated", "VM 100 (web1) migrated from pve1 to pve2 by root@pam")
    ]
    assert events[0].cause is not None
    assert events[0].cause.kind == "migration"


def test_ha_recovery_is_ha_without_a_task() -> None:
    old = vm(hastate="fence")
    new = vm(node="pve2", hastate="recovery")
    events = explained([old, node("pve2")], [new, node("pve2")], [])
    migrated = next(e for e in events if e.type == "guest.migrated")
    assert migrated.cause is not None
    assert (migrated.cause.kind, migrated.cause.task) == ("ha", None)
    assert migrated.summary.endswith("by HA (state recovery)")


@pytest.mark.parametrize(
    ("old", "new", "rows", "kind"),
    [
        (vm(status="stopped"), vm(), [task("qmstart", user="alice@pve")], "user"),
        (vm(status="stopped"), vm(), [task("vzdump")], "backup"),
        (vm(status="stopped"), vm(), [], "unknown"),
        (vm(), vm(status="paused"), [task("qmpause")], "user"),
        (vm(status="paused"), vm(), [task("qmresume")], "user"),
        (vm(), vm(status="io-error"), [], "unplanned"),
        # The QEMU process was kept: a start (which would fail on it) explains nothing.
        (vm(status="io-error"), vm(), [task("qmstart", user="alice@pve")], "unknown"),
        (vm(status="io-error"), vm(), [task("qmresume", user="alice@pve")], "user"),
        (vm(status="prelaunch"), vm(), [task("qmstart", user="alice@pve")], "unknown"),
        (vm(status="suspended"), vm(), [task("vzdump")], "backup"),
        (ct(status="stopped"), ct(), [task("vzstart", 200)], "user"),
    ],
)
def test_other_transitions(old: Row, new: Row, rows: list[Row], kind: str) -> None:
    events = explained([old], [new], rows)
    assert len(events) == 1
    assert events[0].cause is not None
    assert events[0].cause.kind == kind


def test_changes_that_are_not_transitions_get_no_cause() -> None:
    events = explained([vm()], [vm(tags="web;prod")], [task("qmstop")])
    assert [(e.type, e.cause) for e in events] == [("guest.tags_changed", None)]


@pytest.mark.parametrize(
    ("fields", "rows", "expect", "severity"),
    [
        ({"hastate": "started"}, [], HA_STARTED, "critical"),
        ({"hastate": "started"}, None, HA_STARTED, "critical"),
        ({"hastate": "started"}, [task("qmstop", user="alice@pve")], HA_STARTED, "info"),
        ({"hastate": "started", "lock": "backup"}, [task("vzdump")], HA_STARTED, "info"),
        ({}, [], HA_STARTED, "info"),
        ({}, [], (), "info"),
        ({"tags": "prod;web"}, [], (ExpectRule(tag="prod"),), "critical"),
        ({"tags": "web"}, [], (ExpectRule(tag="prod"),), "info"),
        ({"pool": "production"}, [], (ExpectRule(pool="production"),), "critical"),
        ({}, [], (ExpectRule(vmids=(100, 101)),), "critical"),
        ({}, [], (ExpectRule(vmids=(101,)),), "info"),
        ({}, [], (ExpectRule(name="web*"),), "critical"),
        ({}, [], (ExpectRule(name="db*"),), "info"),
        ({}, [], (ExpectRule(all=True),), "critical"),
        ({}, [], (ExpectRule(cluster="demo", all=True),), "critical"),
        ({}, [], (ExpectRule(cluster="other", all=True),), "info"),
        ({"tags": "prod"}, [], (ExpectRule(tag="prod", name="db*"),), "info"),
    ],
)
def test_severity_of_a_stop_from_the_expected_state(
    fields: dict[str, Any], rows: list[Row] | None, expect: tuple[ExpectRule, ...], severity: str
) -> None:
    events = explained([vm(**fields)], [vm(status="stopped", **fields)], rows, expect)
    assert [(e.type, e.severity.value) for e in events] == [("guest.stopped", severity)]


def test_explain_never_fails_on_garbage_task_rows() -> None:
    rows: list[Any] = [None, 1, "x", {"upid": 5}, {"upid": "UPID:bad"}, {}, task("qmstop")]
    event = stop(rows)
    assert event.cause is not None
    assert event.cause.kind == "user"
