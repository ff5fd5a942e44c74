"""Which PVE task explains a check's problem, from the last poll's `/cluster/tasks`. Pure.

- `replication.failed`: the newest failed replication task (kind `replication` in
  `watch.tasks`: `pvesr`, `replicate`) of the job's guest (task id = the vmid or the job
  id) on the job's node, ended after the last good sync. Scheduled runs often leave no
  task; then there is no cause.
- `backup.stale`: the newest failed backup (kind `backup`: `vzdump`) of the guest that
  started after its newest backup: one of that guest (task id = the vmid), or else a
  backup job of several guests (task id "") on the guest's node that ended with errors.

The cause is `Cause("replication" | "backup", upid, user)` and the summary names how the
task ended. Other events, and these when no such task is listed (or no task list was
read), are left as they are: no task is not a cause.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from pvewatch.model import Cause, Event
from pvewatch.watch.tasks import Task

_STATUS_SHOWN = 120  # characters of a task's exit status in a summary


def explain(events: Sequence[Event], tasks: Sequence[Task] | None) -> list[Event]:
    """`events` with the cause set on the replication and backup problems a task explains."""
    if not tasks:
        return list(events)
    return [_explained(e, tasks) if e.resolves is None else e for e in events]


def _explained(event: Event, tasks: Sequence[Task]) -> Event:
    if event.type == "replication.failed":
        task = _replication_task(event, tasks)
    elif event.type == "backup.stale":
        task = _backup_task(event, tasks)
    else:
        return event
    if task is None:
        return event
    status = task.status or ""
    if len(status) > _STATUS_SHOWN:
        status = status[: _STATUS_SHOWN - 1] + "…"
    return dataclasses.replace(
        event,
        cause=Cause(task.kind, task.upid, task.user),
        summary=f"{event.summary} (last {task.kind} task: {status})",
    )


def _replication_task(event: Event, tasks: Sequence[Task]) -> Task | None:
    job = event.details.get("job")
    guest = event.details.get("guest")
    last_sync = event.details.get("last_sync")
    node = event.resource.node if event.resource else None
    ids = {str(guest), str(job)}
    after = last_sync if isinstance(last_sync, int) else 0
    return _newest(
        t
        for t in tasks
        if t.kind == "replication"
        and t.id in ids
        and (node is None or t.node == node)
        and t.outcome == "failed"
        and (t.endtime or 0) >= after
    )


def _backup_task(event: Event, tasks: Sequence[Task]) -> Task | None:
    ref = event.resource
    if ref is None or ref.vmid is None:
        return None
    last = event.details.get("last_backup")
    after = last if isinstance(last, int) else 0
    failed = [t for t in tasks if t.kind == "backup" and t.outcome == "failed"]
    failed = [t for t in failed if t.starttime > after]
    own = _newest(t for t in failed if t.id == str(ref.vmid))
    if own is not None:
        return own
    return _newest(t for t in failed if t.id == "" and ref.node and t.node == ref.node)


def _newest(found: Iterable[Task]) -> Task | None:
    return max(found, key=lambda t: t.starttime, default=None)
