"""The backups check's answers → a reading: coverage and age of each guest (see
`findings`). Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pvewatch.model import Severity
from pvewatch.watch.checks.findings import Reading, clock, epoch, finding, integer, rows

_W, _C = Severity.WARNING, Severity.CRITICAL


# --- backups ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Guest:
    vmid: int
    type: str  # qemu | lxc
    name: str | None
    node: str | None


def backups(
    guests: Sequence[Guest],
    not_covered: object,
    contents: Sequence[object] | None,
    now: datetime,
    max_age_hours: float,
) -> Reading:
    """Coverage from /cluster/backup-info/not-backed-up; age from the backup storages'
    content (`contents` None: not readable, ages unknown)."""
    missing = set()
    for row in rows(not_covered, "/cluster/backup-info/not-backed-up"):
        missing.add(integer(row, "vmid", "/cluster/backup-info/not-backed-up"))
    newest: dict[int, int] = {}
    for answer in contents or ():
        for row in rows(answer, "storage content"):
            if row.get("content", "backup") != "backup":
                continue
            vmid = integer(row, "vmid", "storage content")
            newest[vmid] = max(newest.get(vmid, 0), epoch(row, "ctime", "storage content"))
    findings = []
    limit = now - timedelta(hours=max_age_hours)
    for g in guests:
        rid = f"backup/{g.type}/{g.vmid}"
        label = f"{'VM' if g.type == 'qemu' else 'CT'} {g.vmid}{' ' + g.name if g.name else ''}"
        common = {"node": g.node, "vmid": g.vmid, "name": g.name}
        covered = g.vmid not in missing
        findings.append(
            finding(
                "backup.not_covered",
                rid,
                "backup",
                not covered,
                f"{label} is in no backup job" if not covered else f"{label} is in a backup job",
                **common,
            )
        )
        if contents is None or not covered:
            continue
        last = newest.get(g.vmid)
        stale = last is None or datetime.fromtimestamp(last, UTC) < limit
        summary = (
            f"{label} has no backup"
            if last is None
            else f"{label}: newest backup {clock(last)}"
            + (f", older than {max_age_hours:g} h" if stale else "")
        )
        findings.append(
            finding(
                "backup.stale",
                rid,
                "backup",
                stale,
                summary,
                **common,
                details={"last_backup": last, "max_age_hours": max_age_hours},
            )
        )
    unread = frozenset() if contents is not None else frozenset({"backup.stale"})
    return Reading(findings, unread_kinds=unread)
