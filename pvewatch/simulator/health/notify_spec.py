"""`POST /_sim/notify`: the notification to send, from a short description.

    {"type": "vzdump", "severity": "error", "hostname": "pve1", "job-id": "backup-...",
     "guests": [{"vmid": 100, "status": "ok"}, {"vmid": 101, "status": "err",
                 "error": "unable to find VM '101'"}], "error": "one-line job error"}
    {"type": "replication", "job-id": "100-0", "fail_count": 3, "error": "..."}
    {"type": "fencing", "hostname": "pve3", "succeeded": false}
    {"type": "package-updates", "packages": [{"name": "pve-manager", "installed": "9.1.8",
                                              "available": "9.1.9"}]}
    {"type": "system-mail", "subject": "...", "body": "..."}
    {"type": "test"}
    {"source": "pbs", "type": "gc"|"prune"|"sync"|"verify"|"tape-backup"|"tape-load"|"acme"
     |"package-updates", "severity": "error", "datastore": "store1", "job-id": ...}
    {"type": "anything-else", "title": "...", "message": "..."}

Every type takes `severity`, `title`, `message`, `timestamp` and extra `fields` (strings)
to override what PVE would send, and `url`/`token` to send this one elsewhere. Without
`guests`, a vzdump notification backs up one guest of the node, failed when the severity
is `error`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pvewatch.simulator.edits import ControlError
from pvewatch.simulator.health import fields
from pvewatch.simulator.health.notices import (
    PBS_TYPES,
    SEVERITIES,
    GuestRun,
    Notice,
    fencing_notice,
    package_updates_notice,
    pbs_notice,
    replication_notice,
    system_mail_notice,
    test_notice,
    vzdump_notice,
)

if TYPE_CHECKING:
    from pvewatch.simulator.cluster import SimCluster

WHERE = "POST /_sim/notify"
_TYPE = re.compile(r"^[a-z][a-z0-9-]{0,63}$")
_COMMON: tuple[str, ...] = ("type", "source", "severity", "title", "message", "timestamp", "fields")
_COMMON += ("hostname", "url", "token")
_PER_TYPE = {
    "vzdump": ("job-id", "guests", "error"),
    "replication": ("job-id", "target", "schedule", "fail_count", "error", "last_sync"),
    "fencing": ("succeeded",),
    "package-updates": ("packages",),
    "system-mail": ("subject", "body"),
    "test": ("target",),
}
_PBS_KEYS: tuple[str, ...] = (
    "datastore",
    "job-id",
    "remote",
    "remote-store",
    "media-pool",
    "label",
    "drive",
)
_PBS_KEYS += ("error",)


def build(cluster: SimCluster, body: Any, now: float) -> Notice:
    if not isinstance(body, dict):
        raise ControlError(f"{WHERE}: expected a JSON object")
    kind = body.get("type")
    if not isinstance(kind, str) or not _TYPE.match(kind):
        raise ControlError(f"{WHERE}: 'type' must be a notification type such as vzdump")
    source = fields.choice(body.get("source", "pve"), WHERE, "source", ("pve", "pbs"))
    pbs_keys = _PBS_KEYS if kind in PBS_TYPES else ()
    extra = pbs_keys if source == "pbs" else _PER_TYPE.get(kind, ())
    spec = fields.body_object(body, WHERE, (*_COMMON, *extra))
    severity = spec.get("severity")
    if severity is not None:
        severity = fields.choice(severity, WHERE, "severity", SEVERITIES)
    when = fields.epoch(spec.get("timestamp", int(now)), WHERE, "timestamp")
    local = next(iter(cluster.nodes), "pve1")
    host = fields.node_name(
        spec.get("hostname", "pbs" if source == "pbs" else local), WHERE, "hostname"
    )
    if source == "pbs" and kind in PBS_TYPES:
        params = {k: spec[k] for k in _PBS_KEYS if k in spec} | {"hostname": host}
        notice = pbs_notice(kind, severity not in ("error",), params, when)
    elif source == "pve" and kind in _PER_TYPE:
        notice = _pve(cluster, kind, spec, host, severity, when)
    else:
        title = fields.text(spec.get("title"), WHERE, "title")
        message = fields.text(spec.get("message", ""), WHERE, "message", empty=True)
        notice = Notice(
            kind, severity or "info", title, message, {"type": kind, "hostname": host}, when
        )
    return _overridden(notice, spec, severity)


def _pve(
    cluster: SimCluster, kind: str, spec: dict[str, Any], host: str, severity: str | None, when: int
) -> Notice:
    if kind == "vzdump":
        runs = _runs(cluster, spec, host, severity == "error")
        job_id = spec.get("job-id")
        error = spec.get("error")
        return vzdump_notice(
            host,
            None if job_id is None else fields.text(job_id, WHERE, "job-id"),
            runs,
            None if error is None else fields.text(error, WHERE, "error"),
            f"vzdump {' '.join(str(r.vmid) for r in runs)} --mode snapshot",
            when,
        )
    if kind == "replication":
        job_id = fields.text(spec.get("job-id", "100-0"), WHERE, "job-id")
        return replication_notice(
            host,
            job_id,
            fields.text(spec.get("target", "pve2"), WHERE, "target"),
            fields.text(spec.get("schedule", "*/15"), WHERE, "schedule"),
            fields.epoch(spec.get("last_sync", max(0, when - 3600)), WHERE, "last_sync"),
            fields.integer(spec.get("fail_count", 1), WHERE, "fail_count", 1),
            fields.text(spec.get("error", "replication failed"), WHERE, "error"),
            when,
        )
    if kind == "fencing":
        succeeded = bool(fields.flag(spec.get("succeeded", 0), WHERE, "succeeded"))
        nodes = {n: ("fence" if n == host else "online") for n in sorted(cluster.nodes)}
        master = next((n for n in nodes if n != host), host)
        return fencing_notice(host, master, nodes, [], when, succeeded)
    if kind == "package-updates":
        packages = spec.get(
            "packages", [{"name": "pve-manager", "installed": "9.1.8", "available": "9.1.9"}]
        )
        if not isinstance(packages, list) or not all(
            isinstance(p, dict)
            and all(isinstance(p.get(k), str) for k in ("name", "installed", "available"))
            for p in packages
        ):
            raise ControlError(f"{WHERE}: 'packages' is a list of {{name, installed, available}}")
        rows = [
            {"package-name": p["name"], "installed-version": p["installed"]}
            | {"available-version": p["available"]}
            for p in packages
        ]
        return package_updates_notice(host, rows, when)
    if kind == "system-mail":
        mail_subject = fields.text(
            spec.get("subject", f"Cron <root@{host}> test -x /usr/sbin/anacron"), WHERE, "subject"
        )
        return system_mail_notice(
            host, mail_subject, fields.text(spec.get("body", ""), WHERE, "body", empty=True), when
        )
    return test_notice(fields.text(spec.get("target", "pvewatch"), WHERE, "target"), when)


def _runs(cluster: SimCluster, spec: dict[str, Any], host: str, failed: bool) -> list[GuestRun]:
    guests = spec.get("guests")
    if guests is None:
        here = sorted((g for g in cluster.guests.values() if g.node == host), key=lambda g: g.vmid)
        first = here[0] if here else None
        vmid, name = (first.vmid, first.name) if first else (100, "VM 100")
        guests = [{"vmid": vmid, "name": name, "status": "err" if failed else "ok"}]
    if not isinstance(guests, list) or not guests:
        raise ControlError(f"{WHERE}: 'guests' is a non-empty list of {{vmid, status, ...}}")
    runs = []
    for item in guests:
        where = f"{WHERE}: guests[]"
        row = fields.body_object(
            item, where, ("vmid", "name", "status", "time", "size", "filename", "error")
        )
        vmid = fields.integer(row.get("vmid"), where, "vmid", 100)
        status = fields.choice(row.get("status", "ok"), where, "status", ("ok", "err", "todo"))
        guest = cluster.guests.get(f"qemu/{vmid}") or cluster.guests.get(f"lxc/{vmid}")
        name = fields.text(row.get("name", guest.name if guest else f"VM {vmid}"), where, "name")
        secs = fields.integer(row.get("time", 80 if status == "ok" else 3), where, "time")
        size = fields.integer(
            row.get("size", 2_153_611_264 if status == "ok" else 0), where, "size"
        )
        default_file = f"/var/lib/vz/dump/vzdump-qemu-{vmid}.vma.zst" if status == "ok" else None
        filename = row.get("filename", default_file)
        reason = fields.text(row.get("error", f"unable to find VM '{vmid}'"), where, "error")
        log = (
            [f"INFO: Finished Backup of VM {vmid}"]
            if status == "ok"
            else [f"ERROR: Backup of VM {vmid} failed - {reason}"]
        )
        runs.append(GuestRun(vmid, name, status, secs, size, filename, log))
    return runs


def _overridden(notice: Notice, spec: dict[str, Any], severity: str | None) -> Notice:
    if severity is not None:
        notice.severity = severity
    if "title" in spec:
        notice.title = fields.text(spec["title"], WHERE, "title")
    if "message" in spec:
        notice.message = fields.text(spec["message"], WHERE, "message", empty=True)
    extra = spec.get("fields", {})
    if not isinstance(extra, dict) or not all(isinstance(v, str) for v in extra.values()):
        raise ControlError(f"{WHERE}: 'fields' is an object of strings")
    notice.fields.update(extra)
    if "url" in spec:
        notice.url = fields.text(spec["url"], WHERE, "url")
        if not notice.url.startswith(("http://", "https://")):
            raise ControlError(f"{WHERE}: 'url' must be an http(s) URL")
    if "token" in spec:
        notice.token = fields.text(spec["token"], WHERE, "token")
    return notice
