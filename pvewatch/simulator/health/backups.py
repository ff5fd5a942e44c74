"""Backup jobs and backups: `/cluster/backup`, `/cluster/backup-info/not-backed-up` and
`/nodes/{node}/storage/{storage}/content` (pve-manager PVE/API2/Backup.pm,
PVE/API2/Cluster/BackupInfo.pm, PVE/VZDump.pm `get_included_guests`; pve-storage
src/PVE/API2/Storage/Content.pm; FACTS-health.md §7).

By default one nightly job (21:00, every guest) writes to `nfs-backup` when the layout has
it, else to each node's `local`, and every guest has last night's and the night before's
backup: nothing is uncovered or stale. Coverage follows the jobs as PVE computes it (a
pool, a vmid list, or all minus `exclude`; `node` restricts; disabled jobs count).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pvewatch.simulator.edits import ControlError
from pvewatch.simulator.health import calendar, fields

if TYPE_CHECKING:
    from pvewatch.simulator.cluster import SimCluster
    from pvewatch.simulator.entities import Guest

DEFAULT_JOB = "backup-5f0c2a1e-7b3d"
CONTENT_TYPES = ("images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import")
_JOB_TEXT: tuple[str, ...] = (
    "schedule",
    "vmid",
    "exclude",
    "pool",
    "node",
    "storage",
    "comment",
    "mailto",
)
_JOB_TEXT += ("compress", "notes-template")
_JOB_CHOICES = {
    "mode": ("snapshot", "suspend", "stop"),
    "mailnotification": ("always", "failure"),
    "notification-mode": ("auto", "legacy-sendmail", "notification-system"),
}
_JOB_FLAGS = ("enabled", "all", "repeat-missed")


@dataclass(slots=True)
class Volume:
    storage: str
    node: str  # where it was written (a shared storage shows it on every node)
    vmid: int
    kind: str  # qemu | lxc
    ctime: int
    size: int
    notes: str | None = None

    def volid(self) -> str:
        stamp = time.strftime("%Y_%m_%d-%H_%M_%S", time.gmtime(self.ctime))
        return f"{self.storage}:backup/vzdump-{self.kind}-{self.vmid}-{stamp}.{self.format()}"

    def format(self) -> str:
        return "vma.zst" if self.kind == "qemu" else "tar.zst"

    def path(self, shared: bool) -> str:
        base = f"/mnt/pve/{self.storage}" if shared else "/var/lib/vz"
        return f"{base}/dump/{self.volid().split('/', 1)[1]}"

    def row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"volid": self.volid(), "content": "backup", "format": self.format()}
        row.update(subtype=self.kind, vmid=self.vmid, ctime=self.ctime, size=self.size)
        if self.notes:
            row["notes"] = self.notes
        return row


class BackupBook:
    def __init__(self, cluster: SimCluster, now: float) -> None:
        storages = {s.storage for s in cluster.storages if "backup" in s.content.split(",")}
        self.default_storage = "nfs-backup" if "nfs-backup" in storages else "local"
        self.jobs: dict[str, dict[str, Any]] = {
            DEFAULT_JOB: {
                "type": "vzdump",
                "schedule": "21:00",
                "enabled": 1,
                "all": 1,
                "storage": self.default_storage,
                "mode": "snapshot",
                "compress": "zstd",
                "notes-template": "{{guestname}}",
                "notification-mode": "notification-system",
                "prune-backups": {"keep-daily": "7", "keep-weekly": "4"},
            }
        }
        self.volumes: list[Volume] = []
        last_run = _event("21:00").last_at_or_before(now)
        for guest in sorted(cluster.guests.values(), key=lambda g: g.vmid):
            for night in (1, 0):
                self.add(guest, self.default_storage, last_run - night * 86_400 + guest.vmid % 60)

    # --- what the API shows ------------------------------------------------------------

    def job_rows(self, now: float) -> list[dict[str, Any]]:
        rows = []
        for job_id, job in sorted(self.jobs.items()):
            row = {"id": job_id, **job}
            if job.get("schedule"):
                row["next-run"] = _event(job["schedule"]).next_after(now)
            rows.append(row)
        return rows

    def covered(self, cluster: SimCluster) -> set[int]:
        found: set[int] = set()
        for job in self.jobs.values():
            found |= {g.vmid for g in included(cluster, job)}
        return found

    def not_backed_up(self, cluster: SimCluster, visible: set[int]) -> list[dict[str, Any]]:
        covered = self.covered(cluster)
        rows = []
        for guest in sorted(cluster.guests.values(), key=lambda g: str(g.vmid)):
            if guest.vmid in visible and guest.vmid not in covered:
                rows.append({"vmid": guest.vmid, "type": guest.type, "name": guest.name})
        return rows

    def content(self, storage: str, node: str, shared: bool) -> list[Volume]:
        found = [v for v in self.volumes if v.storage == storage and (shared or v.node == node)]
        return sorted(found, key=lambda v: v.volid())

    # --- changes -----------------------------------------------------------------------

    def add(self, guest: Guest, storage: str, ctime: int) -> Volume:
        size = max(1, guest.maxdisk // 8) if guest.type == "qemu" else max(1, guest.disk // 2)
        volume = Volume(storage, guest.node, guest.vmid, guest.type, ctime, size, guest.name)
        self.volumes.append(volume)
        return volume

    def set_last_backup(self, cluster: SimCluster, vmid: str, body: Any) -> None:
        """The guest's newest backup is at `last_backup` (null: it has none at all)."""
        where = f"/_sim/backups/{vmid}"
        spec = fields.body_object(body, where, ("last_backup", "storage"))
        guest = _guest(cluster, vmid, where)
        if "last_backup" not in spec:
            raise ControlError(f"{where}: needs 'last_backup' (epoch seconds or null)")
        storage = fields.text(spec.get("storage", self.default_storage), where, "storage")
        last = spec["last_backup"]
        if last is None:
            self.volumes = [v for v in self.volumes if v.vmid != guest.vmid]
            return
        last = fields.epoch(last, where, "last_backup")
        self.volumes = [v for v in self.volumes if v.vmid != guest.vmid or v.ctime < last]
        self.add(guest, storage, last)

    def put_job(self, cluster: SimCluster, job_id: str, body: Any) -> None:
        where = f"/_sim/backup-jobs/{job_id}"
        if not job_id[:1].isalpha() or not job_id.replace("-", "").replace("_", "").isalnum():
            raise ControlError(f"{where}: a job id such as backup-5f0c2a1e-7b3d")
        allowed = (*_JOB_TEXT, *_JOB_CHOICES, *_JOB_FLAGS, "prune-backups")
        spec = fields.body_object(body, where, allowed)
        job = dict(self.jobs.get(job_id, {"type": "vzdump", "enabled": 1}))
        for key, value in spec.items():
            if value is None:
                job.pop(key, None)
            elif key in _JOB_FLAGS:
                job[key] = fields.flag(value, where, key)
            elif key in _JOB_CHOICES:
                job[key] = fields.choice(value, where, key, _JOB_CHOICES[key])
            elif key == "prune-backups":
                if not isinstance(value, dict) or not all(
                    isinstance(v, str) for v in value.values()
                ):
                    raise ControlError(f"{where}: 'prune-backups' is an object of strings")
                job[key] = dict(value)
            else:
                job[key] = fields.text(value, where, key)
        if job.get("schedule") and calendar.parse(job["schedule"]) is None:
            raise ControlError(f"{where}: 'schedule' is not a calendar event: {job['schedule']!r}")
        for key in ("vmid", "exclude"):
            if job.get(key) and not all(p.strip().isdigit() for p in job[key].split(",")):
                raise ControlError(f"{where}: {key!r} is a comma list of VMIDs")
        if not (job.get("all") or job.get("vmid") or job.get("pool")):
            raise ControlError(f"{where}: a job needs 'all': 1, a 'vmid' list or a 'pool'")
        if "node" in job and job["node"] not in cluster.nodes:
            raise ControlError(f"{where}: no such node {job['node']!r}")
        self.jobs[job_id] = job

    def delete_job(self, job_id: str) -> None:
        if self.jobs.pop(job_id, None) is None:
            raise ControlError(f"/_sim/backup-jobs/{job_id}: no such job")


def included(cluster: SimCluster, job: dict[str, Any]) -> list[Guest]:
    """VZDump.pm `get_included_guests`, for the guests that exist."""
    guests = sorted(cluster.guests.values(), key=lambda g: g.vmid)
    if job.get("pool"):
        chosen = [g for g in guests if g.pool == job["pool"]]
    elif job.get("vmid"):
        wanted = {int(v) for v in str(job["vmid"]).split(",") if v.strip()}
        chosen = [g for g in guests if g.vmid in wanted]
    elif job.get("all"):
        excluded = {int(v) for v in str(job.get("exclude") or "").split(",") if v.strip()}
        chosen = [g for g in guests if g.vmid not in excluded]
    else:
        return []
    return [g for g in chosen if not job.get("node") or g.node == job["node"]]


def _event(spec: str) -> calendar.CalendarEvent:
    event = calendar.parse(spec)
    assert event is not None  # checked when set
    return event


def _guest(cluster: SimCluster, vmid: str, where: str) -> Guest:
    for guest in cluster.guests.values():
        if str(guest.vmid) == vmid:
            return guest
    raise ControlError(f"{where}: no guest {vmid}")
