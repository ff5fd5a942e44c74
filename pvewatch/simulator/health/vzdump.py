"""Backup runs: `POST /_sim/vzdump` runs a job (or a list of guests) at once, the way
pvescheduler does on each node (PVE/VZDump.pm `exec_backup`, PVE/API2/VZDump.pm): one
`vzdump` task per node that holds included guests (its id the VMID when it backs up one
guest), ending `OK`, `job errors` when a guest failed, or the job's own one-line error;
a backup volume for each guest that succeeded; and the node's `vzdump` notification.
Churn's random backups end the same way (`finish_churn_backup`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from pvewatch.simulator.edits import ControlError
from pvewatch.simulator.health import fields
from pvewatch.simulator.health.backups import included
from pvewatch.simulator.health.notices import GuestRun, Notice, vzdump_notice
from pvewatch.simulator.health.render import timestamp

if TYPE_CHECKING:
    from pvewatch.simulator.cluster import SimCluster
    from pvewatch.simulator.entities import Guest

_KEYS = ("job", "vmids", "node", "fail", "error", "storage", "notify")


def run(cluster: SimCluster, body: Any, now: float) -> tuple[dict[str, Any], list[Notice]]:
    where = "/_sim/vzdump"
    spec = fields.body_object(body, where, _KEYS)
    book = cluster.health.backups
    job_id, job = spec.get("job"), None
    if job_id is not None:
        job = book.jobs.get(job_id) if isinstance(job_id, str) else None
        if job is None:
            raise ControlError(f"{where}: no backup job {job_id!r}")
        guests = included(cluster, job)
    elif isinstance(spec.get("vmids"), list) and spec["vmids"]:
        guests = [_guest(cluster, v, where) for v in spec["vmids"]]
    else:
        raise ControlError(f"{where}: needs a 'job' id or a non-empty 'vmids' list")
    failures = _failures(spec.get("fail", {}), where)
    error = spec.get("error")
    if error is not None and ("\n" in fields.text(error, where, "error")):
        raise ControlError(f"{where}: 'error' is one line (what the job died of)")
    storage = fields.text(
        spec.get("storage", (job or {}).get("storage", book.default_storage)), where, "storage"
    )
    only = spec.get("node")
    notify = fields.flag(spec.get("notify", 1), where, "notify")
    by_node: dict[str, list[Guest]] = defaultdict(list)
    for guest in guests:
        if only is None or guest.node == only:
            by_node[guest.node].append(guest)
    result: dict[str, Any] = {"tasks": [], "skipped_nodes": []}
    notices = []
    for node in sorted(by_node):
        if not cluster.node_online(node):
            result["skipped_nodes"].append(node)  # pvescheduler does not run there
            continue
        upid, notice = _run_node(
            cluster,
            node,
            by_node[node],
            job_id,
            failures,
            error,
            storage,
            now,
            (job or {}).get("mode", "snapshot"),
        )
        result["tasks"].append(upid)
        notices.append(notice)
    return result, notices if notify else []


def finish_churn_backup(
    cluster: SimCluster, guest_id: str, upid: str, result: str, now: float
) -> None:
    """A backup started by churn ended: its volume, and its notification (a manual run)."""
    guest, task = cluster.guests.get(guest_id), cluster.tasks.get(upid)
    if guest is None or task is None:
        return
    book = cluster.health.backups
    secs = max(1, int(now) - task.starttime)
    if result == "OK":
        volume = book.add(guest, book.default_storage, task.starttime)
        run_ = GuestRun(guest.vmid, guest.name, "ok", secs, volume.size, volume.path(False))
        run_.log = _ok_log(guest, task.starttime, secs, run_.filename or "")
    else:
        run_ = GuestRun(guest.vmid, guest.name, "err", secs)
        run_.log = _err_log(guest, task.starttime, secs, result)
    cmdline = f"vzdump {guest.vmid} --storage {book.default_storage}"
    cluster.health.outbox.append(vzdump_notice(guest.node, None, [run_], None, cmdline, now))


def _run_node(
    cluster: SimCluster,
    node: str,
    guests: list[Guest],
    job_id: str | None,
    failures: dict[int, str],
    error: str | None,
    storage: str,
    now: float,
    mode: str,
) -> tuple[str, Notice]:
    book = cluster.health.backups
    shared = any(s.storage == storage and s.shared for s in cluster.storages)
    cmdline = f"vzdump {' '.join(str(g.vmid) for g in guests)} --mode {mode} --storage {storage}"
    cmdline += f" --node {node}" if job_id else ""
    secs = [0 if error else 3 if g.vmid in failures else 40 + g.vmid % 50 for g in guests]
    start = int(now) - sum(secs)
    runs, task_log, at = [], [f"INFO: starting new backup job: {cmdline}"], start
    for guest, took in zip(guests, secs, strict=True):
        if error:
            runs.append(GuestRun(guest.vmid, guest.name, "todo", log=["no log available"]))
            continue
        if guest.vmid in failures:
            run_ = GuestRun(guest.vmid, guest.name, "err", took)
            run_.log = _err_log(guest, at, took, failures[guest.vmid])
        else:
            volume = book.add(guest, storage, at)
            run_ = GuestRun(guest.vmid, guest.name, "ok", took, volume.size, volume.path(shared))
            run_.log = _ok_log(guest, at, took, run_.filename or "")
        task_log += [line.split(" ", 2)[2] for line in run_.log]
        runs.append(run_)
        at += took
    failed = error or ("job errors" if failures.keys() & {g.vmid for g in guests} else None)
    if error:
        task_log.append(f"ERROR: {error}")
    else:
        task_log.append(f"INFO: Backup job finished {'with errors' if failed else 'successfully'}")
    object_id = str(guests[0].vmid) if len(guests) == 1 else ""
    task = cluster.start_task(node, "vzdump", object_id, "root@pam", start, task_log)
    cluster.finish_task(task.upid, failed or "OK", now)
    return task.upid, vzdump_notice(node, job_id, runs, error, cmdline, now)


def _ok_log(guest: Guest, at: int, secs: int, path: str) -> list[str]:
    took = f"{secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}"
    return [
        f"{timestamp(at)} INFO: Starting Backup of VM {guest.vmid} ({guest.type})",
        f"{timestamp(at)} INFO: Backup started at {timestamp(at)}",
        f"{timestamp(at)} INFO: creating vzdump archive '{path}'",
        f"{timestamp(at + secs)} INFO: Finished Backup of VM {guest.vmid} ({took})",
    ]


def _err_log(guest: Guest, at: int, secs: int, reason: str) -> list[str]:
    return [
        f"{timestamp(at)} INFO: Starting Backup of VM {guest.vmid} ({guest.type})",
        f"{timestamp(at + secs)} ERROR: Backup of VM {guest.vmid} failed - {reason}",
    ]


def _failures(value: Any, where: str) -> dict[int, str]:
    if not isinstance(value, dict):
        raise ControlError(f"{where}: 'fail' maps a VMID to the reason it failed")
    found = {}
    for vmid, reason in value.items():
        if not str(vmid).isdigit():
            raise ControlError(f"{where}: 'fail' keys are VMIDs, got {vmid!r}")
        found[int(vmid)] = fields.text(reason, where, f"fail.{vmid}")
    return found


def _guest(cluster: SimCluster, vmid: Any, where: str) -> Guest:
    for guest in cluster.guests.values():
        if guest.vmid == vmid and not isinstance(vmid, bool):
            return guest
    raise ControlError(f"{where}: no guest {vmid!r}")
