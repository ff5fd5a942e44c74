"""The task behind a check's problem (pvewatch/watch/checks/cause.py): a failed replication
or backup task from /cluster/tasks becomes the event's cause; a task that ended well,
began before the last good run, or ran elsewhere does not."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from pvewatch.model import Cause, Event
from pvewatch.watch.checks import backups, findings
from pvewatch.watch.checks.cause import explain
from pvewatch.watch.checks.evaluate import Context, evaluate
from pvewatch.watch.checks.findings import Reading
from pvewatch.watch.tasks import parse_tasks

from .taskrows import task

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
T = int(NOW.timestamp())
HOUR = 3600
LAST_BACKUP = T - 3 * 24 * HOUR
LAST_SYNC = T - 2 * HOUR


def _events(reading: Reading) -> list[Event]:
    """The problems a first reading reports (at start), before any cause."""
    events, _ = evaluate("lab", reading, {}, Context(NOW))
    return events


def stale_backup() -> Event:
    guests = [backups.Guest(103, "qemu", "db1", "pve1")]
    content = [{"content": "backup", "vmid": 103, "ctime": LAST_BACKUP}]
    (event,) = _events(backups.backups(guests, [], [content], NOW, 26))
    assert event.type == "backup.stale"
    return event


def failed_replication() -> Event:
    row = {"id": "100-0", "guest": 100, "target": "pve2", "fail_count": 2}
    row |= {"error": "no space left on pve2", "last_sync": LAST_SYNC}
    (event,) = _events(findings.replication({"pve1": [row]}, {100: "web1"}, frozenset()))
    assert event.type == "replication.failed"
    return event


FAILED = "ERROR: Backup of VM 103 failed - unable to open file"
CASES = [
    # (what, event, task rows, the index of the row that is the cause, or None)
    ("a failed backup of the guest", stale_backup,
     [task("vzdump", 103, start=T - HOUR, end=T - HOUR + 60, status=FAILED)], 0),
    ("the newest of two failed backups", stale_backup,
     [task("vzdump", 103, start=T - 9 * HOUR, end=T - 9 * HOUR + 60, status=FAILED),
      task("vzdump", 103, start=T - HOUR, end=T - HOUR + 60, status="job errors", pid=2)], 1),
    ("a backup that ended well is no cause", stale_backup,
     [task("vzdump", 103, start=T - HOUR, end=T - HOUR + 60, status="OK")], None),
    ("nor one that ended with warnings", stale_backup,
     [task("vzdump", 103, start=T - HOUR, end=T - HOUR + 60, status="WARNINGS: 1")], None),
    ("nor one still running", stale_backup,
     [task("vzdump", 103, start=T - 60, end=None, status=None)], None),
    ("nor one that failed before the last backup", stale_backup,
     [task("vzdump", 103, start=LAST_BACKUP - HOUR, end=LAST_BACKUP - 60, status=FAILED)],
     None),
    ("nor another guest's", stale_backup,
     [task("vzdump", 104, start=T - HOUR, end=T - HOUR + 60, status=FAILED)], None),
    ("a backup job on the guest's node that ended with errors", stale_backup,
     [task("vzdump", "", start=T - HOUR, end=T - HOUR + 600, status="job errors")], 0),
    ("not a job on another node", stale_backup,
     [task("vzdump", "", node="pve2", start=T - HOUR, end=T - 60, status="job errors")], None),
    ("the guest's own backup before a job", stale_backup,
     [task("vzdump", "", start=T - HOUR, end=T - HOUR + 600, status="job errors"),
      task("vzdump", 103, start=T - 5 * HOUR, end=T - 5 * HOUR + 60, status=FAILED, pid=2)],
     1),
    ("a failed replication task of the guest", failed_replication,
     [task("pvesr", 100, start=T - 600, end=T - 590, status="no space left on pve2")], 0),
    ("named by the job id", failed_replication,
     [task("replicate", "100-0", start=T - 600, end=T - 590, status="zfs error")], 0),
    ("not a replication that failed before the last sync", failed_replication,
     [task("pvesr", 100, start=LAST_SYNC - 600, end=LAST_SYNC - 590, status="x")], None),
    ("not a replication on another node", failed_replication,
     [task("pvesr", 100, node="pve3", start=T - 600, end=T - 590, status="x")], None),
    ("not a backup of the guest", failed_replication,
     [task("vzdump", 100, start=T - 600, end=T - 590, status=FAILED)], None),
]  # fmt: skip


@pytest.mark.parametrize(("what", "make", "rows", "cause"), CASES, ids=[c[0] for c in CASES])
def test_the_task_that_explains_a_check_problem(
    what: str, make: Callable[[], Event], rows: list[dict[str, object]], cause: int | None
) -> None:
    event = make()
    (explained,) = explain([event], parse_tasks(rows))
    if cause is None:
        assert explained == event
        return
    row = rows[cause]
    kind = "backup" if row["type"] == "vzdump" else "replication"
    assert explained.cause == Cause(kind, str(row["upid"]), "root@pam")
    assert explained.summary == f"{event.summary} (last {kind} task: {row['status']})"
    assert (explained.condition, explained.id) == (event.condition, event.id)


def test_no_task_list_no_cause_and_a_resolution_is_left_alone() -> None:
    event = stale_backup()
    rows = [task("vzdump", 103, start=T - HOUR, end=T - HOUR + 60, status=FAILED)]
    assert explain([event], None) == [event]
    assert explain([event], []) == [event]
    resolved = Event(
        "evt_x", "backup.fresh", NOW, "lab", event.severity, "fresh", event.resource,
        condition=event.condition, resolves=event.id,
        details={"last_backup": LAST_BACKUP},
    )  # fmt: skip
    assert explain([resolved], parse_tasks(rows)) == [resolved]


def test_a_long_exit_status_is_cut_in_the_summary() -> None:
    status = "ERROR: " + "x" * 400
    rows = [task("vzdump", 103, start=T - HOUR, end=T - HOUR + 60, status=status)]
    (explained,) = explain([stale_backup()], parse_tasks(rows))
    assert explained.summary.endswith("…)")
    assert len(explained.summary) < len(stale_backup().summary) + 150
