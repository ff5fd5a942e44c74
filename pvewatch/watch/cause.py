"""Why a guest changed: join each guest transition with the PVE task that explains it, and
set the severity of a stop from the expected state. Pure.

A task explains a transition when it is about that guest (task `id` = vmid) or is a
node-wide task on the guest's node (`stopall`, a `vzdump` of several guests while the
guest is locked for backup), its type can cause that transition, and it ran during the
poll window: from the previous poll minus `SLACK_SECS` (pvestatd shows a status up to
~15 s late, FACTS.md §2.8) to now plus a little clock skew.

Kinds: `user`, `backup`, `migration`, `ha` (an HA task, or the guest's HA state moving),
`replication`, `unplanned` (a stop, or a crash state, that no task explains while the
task list covers the window), `unknown` (no task list, or it no longer reaches back).
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pvewatch.config.rules import ExpectRule
from pvewatch.model import Cause, Event, Resource, Severity
from pvewatch.watch.rule_input import RuleInput
from pvewatch.watch.tasks import Task, parse_tasks

SLACK_SECS = 30
_SKEW_SECS = 10
_TASKS_KEPT_PER_NODE = 25  # PVE keeps this many finished tasks per node (FACTS.md §3.3)

_STOP = ("hastop", "qmstop", "vzstop", "qmshutdown", "vzshutdown", "stopall")
_MIGRATE = ("hamigrate", "harelocate", "qmigrate", "vzmigrate", "migrateall")
_START = ("hastart", "qmstart", "vzstart", "startall")
_REBOOT = ("qmreboot", "vzreboot", "qmreset")
# Per event type, the task types that can cause it, the most telling first.
_CANDIDATES: Mapping[str, tuple[str, ...]] = {
    "guest.stopped": (*_STOP, *_REBOOT, "qmsuspend", "vzdump", *_MIGRATE),
    "guest.started": (*_START, *_REBOOT, "qmresume", "vzdump", *_MIGRATE),
    "guest.paused": ("qmpause", "qmsuspend", "vzsuspend", "vzdump", *_MIGRATE),
    # The QEMU process was kept (diff.QEMU_PAUSED_STATES): no start task explains it.
    "guest.resumed": ("qmresume", "vzresume", "vzdump", *_MIGRATE),
    "guest.migrated": _MIGRATE,
    "guest.status_changed": (
        *(*_START, *_STOP, *_REBOOT),
        *("qmsuspend", "qmpause", "qmresume", "vzdump", *_MIGRATE),
    ),
    "guest.added": ("qmcreate", "vzcreate", "qmrestore", "vzrestore", *_MIGRATE),
    "guest.removed": ("qmdestroy", "vzdestroy"),
}
_NODE_WIDE = frozenset({"stopall", "startall", "migrateall", "vzdump"})
# HA states in which the HA stack itself is acting on the guest.
_HA_ACTING = frozenset(
    {"fence", "recovery", "migrate", "relocate", "request_stop", "request_start"}
    | {"request_start_balance", "freeze"}
)
_CRASHED = frozenset({"io-error", "internal-error", "guest-panicked"})
_EXPLAINED = frozenset({"user", "backup", "migration"})


@dataclass(frozen=True, slots=True)
class TaskIndex:
    """The task list, indexed once per poll: each event looks only at its guest's tasks."""

    by_id: Mapping[str, Sequence[Task]]  # by task id (a vmid, or "" for node-wide tasks)
    finished_starts: Mapping[str, Sequence[int]]  # per node, start times of finished tasks

    @classmethod
    def of(cls, tasks: Sequence[Task]) -> TaskIndex:
        by_id: dict[str, list[Task]] = defaultdict(list)
        starts: dict[str, list[int]] = defaultdict(list)
        for task in tasks:
            by_id[task.id].append(task)
            if task.endtime is not None:
                starts[task.node].append(task.starttime)
        return cls(by_id, starts)


def explain(events: Sequence[Event], inp: RuleInput, expect: Sequence[ExpectRule]) -> list[Event]:
    """`events` with cause, summary and severity set where a guest transition has a cause."""
    tasks = TaskIndex.of(parse_tasks(inp.tasks)) if inp.tasks is not None else None
    window = _window(inp)
    return [
        _explained(e, inp, tasks, window, expect) if e.type in _CANDIDATES else e for e in events
    ]


def _window(inp: RuleInput) -> tuple[int, int]:
    start = inp.old.taken_at if inp.old is not None else inp.now
    return int(start.timestamp()) - SLACK_SECS, int(inp.now.timestamp()) + _SKEW_SECS


def _explained(
    event: Event,
    inp: RuleInput,
    tasks: TaskIndex | None,
    window: tuple[int, int],
    expect: Sequence[ExpectRule],
) -> Event:
    if event.resource is None or event.resource.type not in ("qemu", "lxc"):
        return event
    rid = event.resource.id
    before = inp.old.resources.get(rid) if inp.old is not None else None
    after = inp.new.resources.get(rid)
    guest = after or before
    if guest is None:
        return event
    found = find_cause(event.type, before, after, tasks, window)
    severity = event.severity
    if event.type == "guest.stopped":
        planned = found.kind in _EXPLAINED or (found.kind == "ha" and found.task is not None)
        expected = expects_running(before or guest, inp.new.cluster, expect)
        severity = Severity.CRITICAL if expected and not planned else Severity.INFO
    return dataclasses.replace(
        event,
        cause=found,
        severity=severity,
        summary=event.summary + _summary_suffix(event.type, found, guest),
    )


def find_cause(
    event_type: str,
    before: Resource | None,
    after: Resource | None,
    tasks: TaskIndex | None,
    window: tuple[int, int],
) -> Cause:
    """The cause of one guest transition (see the module docstring)."""
    guest = after or before
    assert guest is not None
    if tasks is None:
        return Cause("unknown")
    task = _best_task(event_type, before, after, tasks, window)
    if _ha_acting(before, after) or (task is not None and task.kind == "ha"):
        return Cause("ha", task.upid if task else None, task.user if task else None)
    if task is not None:
        return Cause(task.kind, task.upid, task.user)
    crashed = event_type == "guest.status_changed" and guest.status in _CRASHED
    if event_type == "guest.stopped" or crashed:
        node = (before or guest).node
        return Cause("unplanned" if _covers(tasks, node, window[0]) else "unknown")
    return Cause("unknown")


def _best_task(
    event_type: str,
    before: Resource | None,
    after: Resource | None,
    tasks: TaskIndex,
    window: tuple[int, int],
) -> Task | None:
    types = _CANDIDATES[event_type]
    guest = after or before
    assert guest is not None
    vmid = str(guest.vmid) if guest.vmid is not None else ""
    nodes = {r.node for r in (before, after) if r is not None and r.node}
    locked = any(r is not None and r.lock == "backup" for r in (before, after))
    start, end = window
    best: tuple[int, int, Task] | None = None
    for task in [*tasks.by_id.get(vmid, ()), *tasks.by_id.get("", ())]:
        if task.type not in types or task.starttime > end:
            continue
        if task.endtime is not None and task.endtime < start:
            continue
        if task.id:
            rank = 0
        elif task.id == "" and task.type in _NODE_WIDE and task.node in nodes:
            if task.type == "vzdump" and not locked:
                continue  # a long backup job does not explain every guest on its node
            rank = 1
        else:
            continue
        key = (rank * 100 + types.index(task.type), -task.starttime)
        if best is None or key < best[:2]:
            best = (*key, task)
    return best[2] if best else None


def _ha_acting(before: Resource | None, after: Resource | None) -> bool:
    if before is None or after is None or after.hastate is None:
        return False
    return before.hastate != after.hastate or after.hastate in _HA_ACTING


def _covers(tasks: TaskIndex, node: str | None, since: int) -> bool:
    """Whether the node's task list reaches back to `since`: PVE keeps only the newest 25
    finished tasks per node, so after a long gap a task may have fallen off the list."""
    finished = tasks.finished_starts.get(node or "", ())
    return len(finished) < _TASKS_KEPT_PER_NODE or min(finished) <= since


def _summary_suffix(event_type: str, cause: Cause, guest: Resource) -> str:
    task_type = _task_type(cause.task)
    if cause.kind == "user" and cause.user:
        return f" by {cause.user}"
    if cause.kind == "backup":
        return f" by a backup ({task_type})"
    if cause.kind == "migration":
        if event_type == "guest.migrated":
            return f" by {cause.user}" if cause.user else ""
        return f" by a migration ({task_type}, {cause.user})"
    if cause.kind == "ha":
        if cause.task:
            return f" by HA ({task_type}, {cause.user})"
        return f" by HA (state {guest.hastate})"
    if cause.kind == "replication":
        return f" by replication ({task_type})"
    if cause.kind == "unplanned" and event_type == "guest.stopped":
        return " unexpectedly"
    return ""


def _task_type(upid: str | None) -> str:
    # UPID:node:pid:pstart:starttime:TYPE:id:user:
    parts = (upid or "").split(":")
    return parts[5] if len(parts) > 5 else "task"


def expects_running(guest: Resource, cluster: str, rules: Sequence[ExpectRule]) -> bool:
    """Whether any `expect:` entry says this guest should be running."""
    return any(_matches(rule, guest, cluster) for rule in rules)


def _matches(rule: ExpectRule, guest: Resource, cluster: str) -> bool:
    checks = (
        rule.cluster is None or rule.cluster == cluster,
        rule.tag is None or rule.tag.lower() in (t.lower() for t in guest.tags),
        rule.pool is None or rule.pool == guest.pool,
        not rule.vmids or guest.vmid in rule.vmids,
        rule.name is None or fnmatch.fnmatchcase(guest.name or "", rule.name),
        rule.hastate is None or rule.hastate == guest.hastate,
    )
    return all(checks)
