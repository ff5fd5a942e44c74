"""Tasks: parsing /cluster/tasks, and task.failed / task.warnings reported once each."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pvewatch.config.rules import TaskRules
from pvewatch.model import Event
from pvewatch.watch import tasks

from .rows import NOW, Row, node, vm
from .taskrows import T, rule_input, task

CONFIG = TaskRules()


def run(
    rows: list[Row] | None,
    state: object,
    config: TaskRules = CONFIG,
    logs: dict[str, list[str]] | None = None,
) -> tuple[list[Event], Any]:
    inp = rule_input([vm(), node()], [vm(), node()], rows, logs=logs)
    events, new_state = tasks.task_events(rows, state, inp, config)
    json.dumps(new_state)  # the store keeps it as JSON
    return events, new_state


def after_baseline(*history: Row) -> Any:
    return run(list(history), None)[1]


def test_parse_the_facts_example() -> None:
    """FACTS §9.4: a finished task, warnings, a running one and a token-started one."""
    rows = [
        task("qmstart", user="root@pam"),
        task("vzdump", "", status="WARNINGS: 1", pid=2),
        task("vzdump", 103, node="pve3", end=None, status=None, pid=3),
        task("qmigrate", 103, user="admin@pam!automation", status="migration aborted", pid=4),
    ]
    parsed = tasks.parse_tasks(rows)
    assert [(t.type, t.id, t.user, t.outcome, t.kind) for t in parsed] == [
        ("qmstart", "100", "root@pam", "ok", "user"),
        ("vzdump", "", "root@pam", "warnings", "backup"),
        ("vzdump", "103", "root@pam", "running", "backup"),
        ("qmigrate", "103", "admin@pam!automation", "failed", "migration"),
    ]
    assert parsed[2].endtime is None
    assert parsed[0].vmid == 100
    assert parsed[1].vmid is None


MISSING = object()  # the key is absent from the row
# How rows of tasks still running look: PVE omits status and endtime (FACTS §3.3); some
# versions and tools send "running", or one of the two without the other.
RUNNING_FORMS: list[tuple[object, object]] = [
    (MISSING, MISSING),
    (None, None),
    ("", MISSING),
    ("  ", T),
    ("running", MISSING),
    ("running", T),
    ("RUNNING", T),
    (" Running ", MISSING),
    (1, T),
    ("OK", MISSING),
    ("job errors", None),
    ("job errors", 0),
    ("WARNINGS: 1", "soon"),
    (MISSING, T),
]
FINISHED_FORMS: list[tuple[object, object, str]] = [
    ("OK", T, "ok"),
    ("OK", str(T), "ok"),
    ("WARNINGS: 3", T, "warnings"),
    ("job errors", T, "failed"),
    ("unexpected status", T, "failed"),
    ("received interrupt", T, "failed"),
    ("migration aborted", T, "failed"),
    ("command 'x' failed: exit code 4", T, "failed"),
]


def row_with(status: object, endtime: object, **kwargs: Any) -> Row:
    row = task("vzdump", end=None, status=None, **kwargs)
    row.pop("pid")
    for key, value in (("status", status), ("endtime", endtime)):
        if value is not MISSING:
            row[key] = value
    return row


@pytest.mark.parametrize(("status", "endtime"), RUNNING_FORMS)
def test_a_task_without_an_end_and_an_exit_status_is_running(
    status: object, endtime: object
) -> None:
    [parsed] = tasks.parse_tasks([row_with(status, endtime)])
    assert (parsed.outcome, parsed.endtime, parsed.status) == ("running", None, None)


@pytest.mark.parametrize(("status", "endtime", "outcome"), FINISHED_FORMS)
def test_outcome_of_an_exit_status(status: str, endtime: object, outcome: str) -> None:
    [parsed] = tasks.parse_tasks([row_with(status, endtime)])
    assert (parsed.outcome, parsed.endtime, parsed.status) == (outcome, T, status)


@pytest.mark.parametrize(("status", "endtime"), RUNNING_FORMS)
@pytest.mark.parametrize(("final", "_", "outcome"), FINISHED_FORMS)
@pytest.mark.parametrize("restart", [False, True], ids=["same process", "restart"])
def test_a_task_seen_running_is_judged_once_when_it_ends(
    status: object, endtime: object, final: str, _: object, outcome: str, restart: bool
) -> None:
    """Never judged while running, whatever the row says; judged by its real end, once,
    also when pvewatch restarted in between (the state goes through the store's JSON)."""
    state = after_baseline(task("qmstart", pid=9))
    running = row_with(status, endtime, start=T - 60)
    events, state = run([running, task("qmstart", pid=9)], state)
    assert events == []
    events, state = run([running], state)  # still running at the next poll
    assert events == []
    if restart:
        state = json.loads(json.dumps(state))
    ended = row_with(final, T + 30, start=T - 60)
    events, state = run([ended, task("qmstart", pid=9)], state)
    expected = {"ok": [], "warnings": ["task.warnings"], "failed": ["task.failed"]}[outcome]
    assert [e.type for e in events] == expected
    if events:
        assert events[0].details["status"] == final
        assert events[0].summary.endswith(final)
    assert run([ended, task("qmstart", pid=9)], state)[0] == []


def test_a_task_seen_running_is_judged_even_when_its_list_comes_back_much_later() -> None:
    """pve3's list showed a backup running, then pve3 was gone for 12 h while the others
    went on; when its list is back, the backup's real end is reported (late but true)."""
    state = after_baseline(task("qmstart", pid=1))
    backup = task("vzdump", node="pve3", start=T, end=None, status=None, pid=3)
    _, state = run([backup, task("qmstart", pid=1)], state)
    for hour in range(1, 13):  # the other nodes' tasks move the watermark on
        other = task("qmstart", pid=100 + hour, start=T + 3600 * hour, end=T + 3600 * hour + 5)
        _, state = run([other], state)
    ended = task("vzdump", node="pve3", start=T, end=T + 600, status="job errors", pid=3)
    events, _ = run([ended], state)
    assert [e.type for e in events] == ["task.failed"]


def test_tasks_seen_running_are_remembered_bounded() -> None:
    state = after_baseline()
    rows = [task("qmstart", i, start=T - i, end=None, status=None, pid=i) for i in range(3000)]
    _, state = run(rows, state)
    assert len(state["running"]) == 2000
    _, state = run([], state)  # none listed: kept a while (a node's list may come back)
    assert len(state["running"]) == 2000
    later = task("qmstart", start=T + 8 * 86_400, end=T + 8 * 86_400 + 1, pid=99_999)
    _, state = run([later], state)
    assert state["running"] == {}


@pytest.mark.parametrize("kind", ["vncproxy", "spiceproxy", "vncshell", "spiceshell", "termproxy"])
def test_console_sessions_are_not_failures_by_default(kind: str) -> None:
    """Real lists: "connection timed out", "...failed: exit code 4" when a tab closes."""
    state = after_baseline()
    closed = task(kind, status="connection timed out", pid=1)
    real = task("vzdump", status="job errors", pid=2)
    assert tasks.logs_wanted([closed, real], state, CONFIG) == tasks.parse_tasks([real])
    events, state = run([closed, real], state)
    assert [e.details["task_type"] for e in events] == ["vzdump"]
    assert closed["upid"] in state["reported"]  # judged (as nothing), not kept pending
    every = TaskRules(ignore_types=frozenset())
    events, _ = run([closed, real], after_baseline(), every)
    assert sorted(str(e.details["task_type"]) for e in events) == sorted([kind, "vzdump"])


def test_rows_that_are_not_tasks_are_skipped() -> None:
    garbage: list[Any] = [None, [], "x", {}, {"upid": 1}, {"upid": "UPID:pve1:zz"}]
    assert tasks.parse_tasks([*garbage, task("qmstop")])[0].type == "qmstop"
    assert len(tasks.parse_tasks(garbage)) == 0


def test_the_first_read_is_history() -> None:
    rows = [task("vzdump", status="job errors", pid=i) for i in range(25)]
    events, state = run(rows, None)
    assert events == []
    assert len(state["reported"]) == 25


def test_a_new_failure_is_reported_once_with_its_log_tail() -> None:
    state = after_baseline(task("qmstart", pid=1))
    failed = task("vzdump", status="job errors", end=T - 1, pid=2)
    log = [f"line {i}" for i in range(30)] + ["TASK ERROR: job errors"]
    events, state = run([failed, task("qmstart", pid=1)], state, logs={failed["upid"]: log})
    assert [(e.type, e.severity.value, e.summary) for e in events] == [
        ("task.failed", "warning", "backup (vzdump) of VM 100 (web1) on pve1 failed: job errors")
    ]
    event = events[0]
    assert event.details["log_tail"] == log[-CONFIG.log_lines :]
    assert event.details["upid"] == failed["upid"]
    assert event.resource is not None
    assert event.resource.id == "qemu/100"
    assert event.cause is not None
    assert (event.cause.kind, event.cause.task) == ("backup", failed["upid"])
    again, _ = run([failed, task("qmstart", pid=1)], state)
    assert again == []


def test_warnings_and_node_wide_tasks() -> None:
    state = after_baseline()
    events, _ = run([task("vzdump", "", status="WARNINGS: 2")], state)
    assert [(e.type, e.summary) for e in events] == [
        ("task.warnings", "backup (vzdump) of node pve1 finished with WARNINGS: 2")
    ]
    assert events[0].resource is not None
    assert events[0].resource.id == "node/pve1"


def test_ok_and_running_tasks_are_no_events() -> None:
    state = after_baseline()
    rows = [task("qmstart", pid=1), task("vzdump", end=None, status=None, pid=2)]
    assert run(rows, state)[0] == []


def test_a_running_task_is_reported_when_it_fails() -> None:
    state = after_baseline(task("vzdump", end=None, status=None))
    events, _ = run([task("vzdump", end=T, status="job errors")], state)
    assert [e.type for e in events] == ["task.failed"]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (TaskRules(failed=False), ["task.warnings"]),
        (TaskRules(warnings=False), ["task.failed"]),
        (TaskRules(failed=False, warnings=False), []),
    ],
)
def test_each_kind_can_be_turned_off(config: TaskRules, expected: list[str]) -> None:
    state = after_baseline()
    rows = [task("vzdump", status="WARNINGS: 1", pid=1), task("qmigrate", status="x", pid=2)]
    assert sorted(e.type for e in run(rows, state, config)[0]) == expected


def test_an_unreadable_list_changes_nothing() -> None:
    state = after_baseline(task("qmstart"))
    assert run(None, state) == ([], state)
    assert run(None, None) == ([], None)


def test_a_list_that_comes_back_is_not_reported_again() -> None:
    """A node's list vanishes (pmxcfs restart) and comes back: old failures stay old."""
    old_failure = task("vzdump", status="job errors", start=T - 9 * 3600, end=T - 8 * 3600)
    state = after_baseline(old_failure, task("qmstart", pid=2))
    _, state = run([task("qmstart", pid=2)], state)
    events, _ = run([old_failure, task("qmstart", pid=2)], state)
    assert events == []


def test_what_failed_while_pvewatch_was_down_is_reported_late() -> None:
    state = after_baseline(task("qmstart", start=T - 7200, end=T - 7190))
    failed = task("qmigrate", status="migration aborted", start=T - 3600, end=T - 3500, pid=9)
    inp = replace(rule_input([vm()], [vm()], [failed]), late=True)
    events, _ = tasks.task_events([failed], state, inp, CONFIG)
    assert [(e.type, e.detected_late) for e in events] == [("task.failed", True)]


def test_logs_wanted_are_the_newest_failures_and_bounded() -> None:
    state = after_baseline()
    rows = [task("vzdump", i, status="job errors", end=T - 100 + i, pid=i) for i in range(10)]
    rows.append(task("qmstart", pid=99))
    wanted = tasks.logs_wanted(rows, state, TaskRules(logs_per_poll=3))
    assert [t.id for t in wanted] == ["9", "8", "7"]
    assert tasks.logs_wanted(rows, None, CONFIG) == []  # the baseline fetches nothing
    assert tasks.logs_wanted(None, state, CONFIG) == []
    assert tasks.logs_wanted(rows, state, TaskRules(log_lines=0)) == []


def test_the_state_stays_bounded() -> None:
    state = after_baseline()
    for poll in range(50):
        rows = [
            task("qmstart", i, start=T + 600 * poll, end=T + 600 * poll + i, pid=poll * 100 + i)
            for i in range(25)
        ]
        _, state = run(rows, state)
    horizon = tasks.REPORT_WINDOW_SECS // 600 + 1
    assert len(state["reported"]) <= 25 * horizon


finished = st.tuples(
    st.sampled_from(["qmstart", "vzdump", "qmigrate"]),
    st.integers(100, 103),
    st.sampled_from(["OK", "WARNINGS: 1", "job errors"]),
    st.integers(0, 3000),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(finished, max_size=6), min_size=1, max_size=8))
def test_every_finished_task_is_reported_at_most_once(polls: list[list[Any]]) -> None:
    """Whatever each poll lists (tasks come and go from the list), a UPID is reported at
    most once, and the ones listed at the baseline never."""
    seen: list[str] = []
    state: object = None
    baseline: set[str] = set()
    for i, listed in enumerate(polls):
        rows = [
            task(kind, vmid, status=status, start=T + end - 5, end=T + end, pid=end)
            for kind, vmid, status, end in listed
        ]
        inp = rule_input([vm()], [vm()], rows, now=NOW + timedelta(seconds=10 * i))
        events, state = tasks.task_events(rows, json.loads(json.dumps(state)), inp, CONFIG)
        if i == 0:
            baseline = {r["upid"] for r in rows}
        seen += [str(e.details["upid"]) for e in events]
    assert len(seen) == len(set(seen))
    assert not baseline & set(seen)
