"""Storage replication: `/cluster/replication[/{id}]` (the job config) and
`/nodes/{node}/replication[/{id}/status]` (config + state of the jobs whose guest lives on
that node). pve-manager PVE/API2/ReplicationConfig.pm, PVE/API2/Replication.pm,
pve-guest-common ReplicationState.pm `job_status`; FACTS-health.md §3.

No jobs by default (both lists are `[]`). `PUT /_sim/replication/{id}` creates or edits
one: a failing job has `fail_count` > 0 and an `error`; each failure that PVE would mail
about (counts 1, 2, 3, then after 1, 2, 4... days) queues a `replication` notification.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pvewatch.simulator.edits import ControlError
from pvewatch.simulator.health import calendar, fields
from pvewatch.simulator.health.notices import (
    Notice,
    replication_notice,
    should_notify_replication,
)

if TYPE_CHECKING:
    from pvewatch.simulator.cluster import SimCluster

JOB_ID = re.compile(r"^([1-9][0-9]{2,8})-(0|[1-9][0-9]{0,8})$")
DEFAULT_SCHEDULE = "*/15"
_KEYS: tuple[str, ...] = (
    "target",
    "schedule",
    "rate",
    "comment",
    "disable",
    "remove_job",
    "fail_count",
)
_KEYS += ("error", "last_sync", "last_try", "duration", "pid", "notify")


@dataclass(slots=True)
class Job:
    guest: int
    jobnum: int
    target: str
    source: str
    schedule: str | None = None
    rate: float | None = None
    comment: str | None = None
    disable: int = 0
    remove_job: str | None = None
    last_sync: int = 0
    last_try: int = 0
    fail_count: int = 0
    duration: float | None = None
    error: str | None = None
    pid: int | None = None

    def config(self, job_id: str) -> dict[str, Any]:
        row: dict[str, Any] = {"id": job_id, "type": "local", "guest": self.guest}
        row.update(jobnum=self.jobnum, target=self.target, source=self.source)
        for key in ("schedule", "rate", "comment", "remove_job"):
            if getattr(self, key) is not None:
                row[key] = getattr(self, key)
        if self.disable:
            row["disable"] = 1
        return row

    def event(self) -> calendar.CalendarEvent:
        parsed = calendar.parse(self.schedule or DEFAULT_SCHEDULE)
        assert parsed is not None  # checked when set
        return parsed


class ReplicationBook:
    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}

    def put(self, cluster: SimCluster, job_id: str, body: Any, now: float) -> list[Notice]:
        where = f"/_sim/replication/{job_id}"
        match = JOB_ID.match(job_id)
        if match is None:
            raise ControlError(f"{where}: a job id is <vmid>-<jobnum>, e.g. 100-0")
        spec = fields.body_object(body, where, _KEYS)
        guest = _guest(cluster, int(match.group(1)), where)
        job = self.jobs.get(job_id)
        if job is None:
            others = [n for n in cluster.nodes if n != guest.node]
            target = spec.get("target", others[0] if others else None)
            job = Job(int(match.group(1)), int(match.group(2)), str(target), guest.node)
            job.last_sync = job.last_try = job.event().last_at_or_before(now)
            job.duration = 2.5
        before = job.fail_count
        edited = _edited(job, spec, where, now)
        if edited.target not in cluster.nodes or edited.target == guest.node:
            raise ControlError(f"{where}: 'target' must be another node than {guest.node}")
        self.jobs[job_id] = edited
        cluster.changed()
        notify = fields.flag(spec.get("notify", 1), where, "notify")
        if not notify or edited.fail_count <= before:
            return []
        if not should_notify_replication(edited.fail_count):
            return []
        notice = replication_notice(
            guest.node,
            job_id,
            edited.target,
            edited.schedule or DEFAULT_SCHEDULE,
            edited.last_sync,
            edited.fail_count,
            edited.error or "",
            now,
        )
        return [notice]

    def delete(self, job_id: str) -> None:
        if self.jobs.pop(job_id, None) is None:
            raise ControlError(f"/_sim/replication/{job_id}: no such job")

    def config_row(self, job_id: str) -> dict[str, Any]:
        """GET /cluster/replication/{id}: the config and the file's digest."""
        row = self.jobs[job_id].config(job_id)
        digest = hashlib.sha1(repr(sorted(self.jobs)).encode(), usedforsecurity=False)
        return row | {"digest": digest.hexdigest()}

    def on_node(self, cluster: SimCluster, node: str) -> list[str]:
        """The jobs `/nodes/{node}/replication` lists: the guest lives on `node`."""
        found = []
        for job_id, job in sorted(self.jobs.items()):
            guest = _find(cluster, job.guest)
            here = guest is not None and guest.node == node
            if here and (job.target != node or job.remove_job):
                found.append(job_id)
        return found

    def status_row(self, cluster: SimCluster, job_id: str) -> dict[str, Any]:
        job = self.jobs[job_id]
        guest = _find(cluster, job.guest)
        row = job.config(job_id)
        row["vmtype"] = guest.type if guest else "qemu"
        row.update(last_sync=job.last_sync, last_try=job.last_try, fail_count=job.fail_count)
        row["next_sync"] = self._next_sync(cluster, job)
        for key in ("duration", "error", "pid"):
            if getattr(job, key) is not None:
                row[key] = getattr(job, key)
        return row

    def _next_sync(self, cluster: SimCluster, job: Job) -> int:
        if job.remove_job:
            return 1
        if job.fail_count > 0:
            if not cluster.node_online(job.target):
                return 0
            backoff = 5 * job.fail_count if job.fail_count <= 3 else 30
            return job.last_try + 60 * backoff
        return job.event().next_after(job.last_try)


def _edited(job: Job, spec: dict[str, Any], where: str, now: float) -> Job:
    """A copy of `job` with `spec` applied, every field checked first."""
    new = dataclasses.replace(job)
    if "target" in spec:
        new.target = fields.node_name(spec["target"], where, "target")
    if "schedule" in spec:
        schedule = spec["schedule"]
        if (
            schedule is not None
            and calendar.parse(fields.text(schedule, where, "schedule")) is None
        ):
            raise ControlError(f"{where}: 'schedule' is not a calendar event: {schedule!r}")
        new.schedule = schedule
    if "rate" in spec:
        rate = spec["rate"]
        if rate is not None and fields.number(rate, where, "rate") < 1:
            raise ControlError(f"{where}: 'rate' (MB/s) must be >= 1")
        new.rate = rate
    if "comment" in spec:
        new.comment = (
            None if spec["comment"] is None else fields.text(spec["comment"], where, "comment")
        )
    if "disable" in spec:
        new.disable = fields.flag(spec["disable"], where, "disable")
    if "remove_job" in spec:
        remove = spec["remove_job"]
        new.remove_job = (
            None
            if remove is None
            else fields.choice(remove, where, "remove_job", ("local", "full"))
        )
    for key in ("last_sync", "last_try"):
        if key in spec:
            setattr(new, key, fields.epoch(spec[key], where, key))
    if "duration" in spec:
        new.duration = (
            None if spec["duration"] is None else fields.number(spec["duration"], where, "duration")
        )
    if "pid" in spec:
        new.pid = None if spec["pid"] is None else fields.integer(spec["pid"], where, "pid", 1)
    _apply_failure(new, job, spec, where, now)
    return new


def _apply_failure(new: Job, old: Job, spec: dict[str, Any], where: str, now: float) -> None:
    if "fail_count" in spec:
        new.fail_count = fields.integer(spec["fail_count"], where, "fail_count")
    if "error" in spec:
        new.error = None if spec["error"] is None else fields.text(spec["error"], where, "error")
    if new.fail_count == 0:
        if "error" in spec and new.error is not None:
            raise ControlError(f"{where}: an 'error' needs 'fail_count' > 0")
        new.error = None
        if old.fail_count > 0 and "last_sync" not in spec:  # recovered: it just synced
            new.last_sync = new.last_try = int(now)
        return
    if new.fail_count != old.fail_count and "last_try" not in spec:
        new.last_try = int(now)
    if new.error is None:
        new.error = (
            f"command 'zfs snapshot rpool/data/vm-{new.guest}-disk-0@__replicate_"
            f"{new.guest}-{new.jobnum}_{new.last_try}__' failed: got timeout"
        )


def _find(cluster: SimCluster, vmid: int) -> Any:
    return cluster.guests.get(f"qemu/{vmid}") or cluster.guests.get(f"lxc/{vmid}")


def _guest(cluster: SimCluster, vmid: int, where: str) -> Any:
    guest = _find(cluster, vmid)
    if guest is None:
        raise ControlError(f"{where}: no guest {vmid}")
    return guest
