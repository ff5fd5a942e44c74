"""PVE tasks from `/cluster/tasks`: parsed rows, and `task.failed` / `task.warnings` for
tasks that finished since the last poll. Pure.

Only a finished task is judged: one with an `endtime` and an exit status (`OK`,
`WARNINGS: n` or an error text, FACTS.md §3.2). A running task has neither (§3.3); a row
that says `"status": "running"` (some versions and tools send it), or has only one of the
two, is running too, and is judged when a later poll lists it finished.

Each finished task is reported once, across restarts: the rule state keeps the UPIDs
already reported (`reported`, with their end times), the newest end time seen
(`watermark`) and the tasks seen running (`running`, with their start times). The first
read is the baseline: the up to 25 finished tasks per node PVE keeps are history, marked
reported, never events. After that, a finished task is new when it is not in `reported`
and either was seen running or did not end long before the watermark (so a node's list
that vanishes and comes back, e.g. after a pmxcfs restart, is not reported again).
Task types in `ignore_types` (console sessions by default) are never reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pvewatch.config.rules import TaskRules
from pvewatch.model import (
    EVENT_TYPES,
    Cause,
    Event,
    JSONValue,
    Resource,
    ResourceRef,
    Snapshot,
    event_id,
    format_time,
)
from pvewatch.upid import parse_upid
from pvewatch.watch.diff import label
from pvewatch.watch.rule_input import RuleInput

# A task that ended this long before the newest end time seen is history, never news.
REPORT_WINDOW_SECS = 6 * 3600
_MAX_REPORTED = 10_000
# A task seen running that is no longer listed is remembered this long after its start
# (its node's list may come back), at most this many.
RUNNING_MEMORY_SECS = 7 * 86_400
_MAX_RUNNING = 2_000

# What kind of cause a task type is (FACTS.md §3.1); other types are "user".
TASK_KINDS: Mapping[str, str] = {
    "vzdump": "backup",
    "qmigrate": "migration",
    "vzmigrate": "migration",
    "migrateall": "migration",
    "hastart": "ha",
    "hastop": "ha",
    "hamigrate": "ha",
    "harelocate": "ha",
    "pvesr": "replication",
    "replicate": "replication",
}

# How a summary names a task type; others by their type.
_TASK_NOUNS: Mapping[str, str] = {
    "vzdump": "backup",
    "qmigrate": "migration",
    "vzmigrate": "migration",
    "qmstart": "start",
    "vzstart": "start",
    "qmstop": "stop",
    "vzstop": "stop",
    "qmshutdown": "shutdown",
    "vzshutdown": "shutdown",
    "qmreboot": "reboot",
    "vzreboot": "reboot",
    "pvesr": "replication",
}


@dataclass(frozen=True, slots=True)
class Task:
    upid: str
    node: str
    type: str
    id: str  # the vmid for guest tasks; "" for node-wide ones (a vzdump of several guests)
    user: str  # "user@realm", or "user@realm!token" when a token started it
    starttime: int
    endtime: int | None  # None while running
    status: str | None  # the exit status (FACTS.md §3.2); None while running

    @property
    def kind(self) -> str:
        return TASK_KINDS.get(self.type, "user")

    @property
    def outcome(self) -> str:
        """running, ok, warnings or failed (only OK and WARNINGS: n are success)."""
        if self.status is None:
            return "running"
        if self.status == "OK":
            return "ok"
        return "warnings" if self.status.startswith("WARNINGS") else "failed"

    @property
    def vmid(self) -> int | None:
        return int(self.id) if self.id.isascii() and self.id.isdigit() else None


def parse_tasks(rows: Sequence[object]) -> list[Task]:
    """The rows that are tasks; a row without a valid UPID is skipped (never a crash)."""
    found = []
    for row in rows:
        task = _task(row) if isinstance(row, dict) else None
        if task is not None:
            found.append(task)
    return found


def _task(row: Mapping[str, object]) -> Task | None:
    text = row.get("upid")
    if not isinstance(text, str):
        return None
    try:
        upid = parse_upid(text)
    except ValueError:
        return None
    status = exit_status(row.get("status"))
    endtime = _int(row.get("endtime"))
    starttime = _int(row.get("starttime"))
    finished = status is not None and endtime is not None and endtime > 0
    return Task(
        upid=text,
        node=upid.node,
        type=upid.type,
        id=upid.id,
        user=upid.user if upid.tokenid is None else f"{upid.user}!{upid.tokenid}",
        starttime=starttime if starttime is not None else upid.starttime,
        endtime=endtime if finished else None,
        status=status if finished else None,
    )


def exit_status(value: object) -> str | None:
    """The exit status a row's `status` says, or None when it says the task still runs:
    absent, not a string, empty, or `running` (which no exit status is, FACTS.md §3.2)."""
    if not isinstance(value, str) or not value.strip():
        return None
    return None if value.strip().lower() == "running" else value


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def logs_wanted(rows: Sequence[object] | None, state: object, config: TaskRules) -> list[Task]:
    """The newly failed tasks whose log tail the pipeline should fetch: newest first, at
    most `logs_per_poll` (the others are reported without a tail)."""
    if rows is None or not config.failed or config.log_lines == 0:
        return []
    fresh = [t for t in _reportable(parse_tasks(rows), state, config) if t.outcome == "failed"]
    fresh.sort(key=lambda t: (t.endtime or 0, t.upid), reverse=True)
    return fresh[: config.logs_per_poll]


def task_events(
    rows: Sequence[object] | None, state: object, inp: RuleInput, config: TaskRules
) -> tuple[list[Event], Any]:
    """task.failed / task.warnings for the tasks finished since the last poll, and the
    new task state. Unreadable tasks (None) change nothing."""
    if rows is None:
        return [], state
    tasks = parse_tasks(rows)
    finished = [t for t in tasks if t.endtime is not None]
    fresh = _new_finished(tasks, state)
    events = []
    for task in sorted(_reportable(tasks, state, config), key=lambda t: (t.endtime or 0, t.upid)):
        wanted = config.failed if task.outcome == "failed" else config.warnings
        if wanted and task.outcome in ("failed", "warnings"):
            events.append(_event(task, inp, inp.task_logs.get(task.upid), config.log_lines))
    return events, _next_state(state, tasks, finished, fresh, inp.now)


def _reportable(tasks: Sequence[Task], state: object, config: TaskRules) -> list[Task]:
    """The newly finished tasks whose outcome may be reported (not an ignored type)."""
    return [t for t in _new_finished(tasks, state) if t.type not in config.ignore_types]


def _new_finished(tasks: Sequence[Task], state: object) -> list[Task]:
    if not isinstance(state, dict):
        return []  # no baseline yet: everything listed now is history
    reported = _mapping(state, "reported")
    running = _mapping(state, "running")
    watermark = _int(state.get("watermark")) or 0
    fresh = {
        t.upid: t
        for t in tasks
        if t.endtime is not None
        and t.upid not in reported
        and (t.upid in running or t.endtime >= watermark - REPORT_WINDOW_SECS)
    }
    return list(fresh.values())  # one per UPID, should a list repeat a row


def _next_state(
    state: object,
    tasks: Sequence[Task],
    finished: Sequence[Task],
    fresh: Sequence[Task],
    now: datetime,
) -> dict[str, Any]:
    ends = [t.endtime for t in finished if t.endtime is not None]
    reported: dict[str, object]
    if not isinstance(state, dict):
        watermark = max(ends, default=int(now.timestamp()))
        reported = {t.upid: t.endtime for t in finished}
    else:
        reported = dict(_mapping(state, "reported"))
        reported.update({t.upid: t.endtime for t in fresh})
        watermark = max([_int(state.get("watermark")) or 0, *ends])
    cutoff = watermark - REPORT_WINDOW_SECS
    recent = sorted(
        ((u, e) for u, e in reported.items() if isinstance(e, int) and e >= cutoff),
        key=lambda item: item[1],
        reverse=True,
    )
    return {
        "watermark": watermark,
        "reported": dict(recent[:_MAX_REPORTED]),
        "running": _still_running(state, tasks, max(watermark, int(now.timestamp()))),
    }


def _still_running(state: object, tasks: Sequence[Task], now: int) -> dict[str, int]:
    """The tasks seen running and not seen finished: the ones listed running now, and the
    ones seen before that are not listed now (their node's list may be gone for a while)."""
    listed = {t.upid for t in tasks}
    before = _mapping(state, "running") if isinstance(state, dict) else {}
    kept = {
        upid: start
        for upid, start in before.items()
        if upid not in listed and isinstance(start, int) and start >= now - RUNNING_MEMORY_SECS
    }
    kept.update({t.upid: t.starttime for t in tasks if t.endtime is None})
    newest = sorted(kept.items(), key=lambda item: item[1], reverse=True)
    return dict(newest[:_MAX_RUNNING])


def _mapping(state: Mapping[str, object], key: str) -> Mapping[str, object]:
    value = state.get(key)
    return value if isinstance(value, dict) else {}


def _event(task: Task, inp: RuleInput, log: Sequence[str] | None, lines: int) -> Event:
    type_ = "task.failed" if task.outcome == "failed" else "task.warnings"
    subject, named = _subject(task, inp.new)
    what = f"{_TASK_NOUNS.get(task.type, 'task')} ({task.type})"
    if task.outcome == "failed":
        summary = f"{what} of {named} failed: {task.status}"
    else:
        summary = f"{what} of {named} finished with {task.status}"
    details: dict[str, JSONValue] = {
        "upid": task.upid,
        "task_type": task.type,
        "node": task.node,
        "user": task.user,
        "status": task.status,
        "starttime": format_time(datetime.fromtimestamp(task.starttime, UTC)),
        "endtime": format_time(datetime.fromtimestamp(task.endtime or task.starttime, UTC)),
    }
    if log is not None and lines:
        details["log_tail"] = list(log[-lines:])
    end = datetime.fromtimestamp(task.endtime or task.starttime, UTC)
    return Event(
        id=event_id(inp.new.cluster, type_, task.upid, None, end),
        type=type_,
        time=inp.now,
        cluster=inp.new.cluster,
        severity=EVENT_TYPES[type_].severity,
        summary=summary,
        resource=ResourceRef.of(subject),
        cause=Cause(task.kind, task.upid, task.user),
        detected_late=inp.late,
        details=details,
    )


def _subject(task: Task, snapshot: Snapshot) -> tuple[Resource, str]:
    """The guest the task is about, else its node; and how a summary names it."""
    if task.vmid is not None:
        for kind in ("qemu", "lxc"):
            guest = snapshot.resources.get(f"{kind}/{task.vmid}")
            if guest is not None:
                return guest, f"{label(guest)} on {task.node}"
    node = snapshot.resources.get(f"node/{task.node}")
    node = node or Resource(id=f"node/{task.node}", type="node", node=task.node)
    # A guest that is gone by now, or something else than a guest (a storage, ...).
    return node, f"{task.id} on {task.node}" if task.id else label(node)
