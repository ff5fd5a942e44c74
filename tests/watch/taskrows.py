"""Rows of /cluster/tasks (FACTS §3.3, §9.4) and rule inputs, for the rules tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from pvewatch.model import Event, Snapshot
from pvewatch.upid import Upid, format_upid
from pvewatch.watch.diff import diff
from pvewatch.watch.rule_input import RuleInput

from .rows import NOW, Row, poll, snap

BEFORE = NOW - timedelta(seconds=10)  # the previous poll
T = int(NOW.timestamp())


def task(
    type_: str,
    vmid: int | str = 100,
    *,
    user: str = "root@pam",
    node: str = "pve1",
    start: int = T - 8,
    end: int | None = T - 5,
    status: str | None = "OK",
    pid: int = 0x1234,
) -> Row:
    """A /cluster/tasks row; `end=None` or `status=None`: still running."""
    name, _, token = user.partition("!")
    upid = format_upid(Upid(node, pid, 0x0B3B125C, start, type_, str(vmid), name, token or None))
    row: Row = {"upid": upid, "node": node, "starttime": start, "type": type_, "id": str(vmid)}
    row["user"] = name
    if token:
        row["tokenid"] = token
    if end is None or status is None:
        row |= {"pid": pid, "saved": "0"}
    else:
        row |= {"endtime": end, "status": status, "saved": "1"}
    return row


def history(node: str = "pve1", count: int = 25, newest: int = T - 3600) -> list[Row]:
    """What a node's list holds after a while: `count` finished tasks, newest first."""
    return [
        task("qmstart", 900 + i, node=node, start=newest - 60 * i, end=newest - 60 * i + 2)
        for i in range(count)
    ]


def rule_input(
    old_rows: Sequence[Row] | None,
    new_rows: Sequence[Row],
    tasks: Sequence[Row] | None = (),
    *,
    now: datetime = NOW,
    before: datetime = BEFORE,
    metrics: Mapping[str, Mapping[str, float]] | None = None,
    logs: Mapping[str, Sequence[str]] | None = None,
    quorate: tuple[bool | None, bool | None] = (True, True),
) -> RuleInput:
    old = None if old_rows is None else snap(old_rows, before)
    if old is not None:
        old = _quorate(old, quorate[0])
    new = _quorate(poll(old, new_rows, now), quorate[1])
    events: list[Event] = diff(old, new, now)
    return RuleInput(
        old=old,
        new=new,
        events=events,
        tasks=None if tasks is None else list(tasks),
        now=now,
        late=False,
        metrics=metrics or {},
        task_logs=logs or {},
    )


def _quorate(snapshot: Snapshot, quorate: bool | None) -> Snapshot:
    return replace(snapshot, quorate=quorate)
