"""PVE tasks of the simulated cluster: UPIDs, the per-node active lists of
`/cluster/tasks`, task status and logs (FACTS.md §3). Pure: times are passed in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

MAX_FINISHED_PER_NODE = 25  # pve-cluster's MAX_FINISHED

_UPID = re.compile(
    r"^UPID:(?P<node>[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?):(?P<pid>[0-9A-Fa-f]{8}):"
    r"(?P<pstart>[0-9A-Fa-f]{8,9}):(?P<starttime>[0-9A-Fa-f]{8}):(?P<type>[^:\s/]+):"
    r"(?P<id>[^:\s]*):(?P<user>[^:\s]+):$"
)


@dataclass(slots=True)
class Task:
    node: str
    pid: int
    pstart: int
    starttime: int
    type: str
    id: str
    user: str  # "user@realm" or a token id "user@realm!name"
    status: str | None = None  # exit status (FACTS §3.2); None while running
    endtime: int | None = None
    log: list[str] = field(default_factory=list)

    @property
    def upid(self) -> str:
        return (
            f"UPID:{self.node}:{self.pid:08X}:{self.pstart:08X}:{self.starttime:08X}:"
            f"{self.type}:{self.id}:{self.user}:"
        )

    def list_row(self) -> dict[str, Any]:
        """The row of `/cluster/tasks`: no pstart; pid only while running (§3.3)."""
        user, _, tokenid = self.user.partition("!")
        row: dict[str, Any] = {
            "upid": self.upid,
            "node": self.node,
            "starttime": self.starttime,
            "type": self.type,
            "id": self.id,
            "user": user,
        }
        if tokenid:
            row["tokenid"] = tokenid
        if self.status is None:
            row["pid"] = self.pid
            row["saved"] = "0"
        else:
            row.update(endtime=self.endtime, status=self.status, saved="1")
        return row

    def status_row(self) -> dict[str, Any]:
        user, _, tokenid = self.user.partition("!")
        row: dict[str, Any] = {
            "upid": self.upid,
            "node": self.node,
            "pid": self.pid,
            "pstart": self.pstart,
            "starttime": self.starttime,
            "type": self.type,
            "id": self.id,
            "user": user,
            "status": "running" if self.status is None else "stopped",
        }
        if tokenid:
            row["tokenid"] = tokenid
        if self.status is not None:
            row["exitstatus"] = self.status
        return row

    def finish(self, status: str, now: float) -> None:
        self.status = status
        self.endtime = max(self.starttime, int(now))
        self.log.append(final_log_line(status))


def final_log_line(status: str) -> str:
    if status == "OK":
        return "TASK OK"
    if status.startswith("WARNINGS:"):
        return f"TASK {status}"
    return f"TASK ERROR: {status}"


def parse_upid(upid: str) -> dict[str, str] | None:
    match = _UPID.match(upid)
    return match.groupdict() if match else None


class TaskBook:
    """Every node's task list; a node keeps its running tasks and its 25 newest finished."""

    def __init__(self) -> None:
        self._by_upid: dict[str, Task] = {}

    def add(self, task: Task) -> Task:
        self._by_upid[task.upid] = task
        self._trim(task.node)
        return task

    def get(self, upid: str) -> Task | None:
        return self._by_upid.get(upid)

    def finish(self, upid: str, status: str, now: float) -> Task | None:
        task = self._by_upid.get(upid)
        if task is not None and task.status is None:
            task.finish(status, now)
            self._trim(task.node)
        return task

    def rows(self, node_order: list[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for node in node_order:
            running, finished = self._split(node)
            rows.extend(t.list_row() for t in running + finished)
        return rows

    def nodes(self) -> list[str]:
        return sorted({t.node for t in self._by_upid.values()})

    def clear(self) -> None:
        self._by_upid.clear()

    def _split(self, node: str) -> tuple[list[Task], list[Task]]:
        mine = [t for t in self._by_upid.values() if t.node == node]
        running = [t for t in mine if t.status is None]
        finished = sorted(
            (t for t in mine if t.status is not None),
            key=lambda t: (t.endtime or 0, t.starttime),
            reverse=True,
        )
        return running, finished

    def _trim(self, node: str) -> None:
        _, finished = self._split(node)
        for old in finished[MAX_FINISHED_PER_NODE:]:
            del self._by_upid[old.upid]


def log_page(lines: list[str], start: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Lines `start`.. (0-based) of a task log, `limit` 0 meaning all (§3.5)."""
    if not lines:
        return [{"n": 1, "t": "no content"}], 0
    end = len(lines) if limit == 0 else start + limit
    page = [{"n": i + 1, "t": text} for i, text in enumerate(lines) if start <= i < end]
    return page, len(lines)
