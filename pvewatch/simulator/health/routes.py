"""The health endpoints of the simulated API, checked as PVE checks them: the privilege
first (403 `Permission check failed (...)`), then the node the request is proxied to
(500 for an unknown node, 595 `No route to host` while it is offline), then the query
parameters (400), then the handler's own errors (500 with its message).

Privileges checked (the code cited in FACTS-health.md):
- /cluster/ha/status/current and /manager_status: Sys.Audit on /
- /cluster/ceph/status, /nodes/{node}/ceph/status: Sys.Audit or Datastore.Audit on /
- /cluster/replication[/{id}], /nodes/{node}/replication[/{id}/status]: any user; jobs of
  guests without VM.Audit on /vms/{vmid} are left out (403 when asking for one job)
- /cluster/config/qdevice: Sys.Audit on /
- /nodes/{node}/certificates/info: any user
- /nodes/{node}/disks/list: Sys.Audit on / or on /nodes/{node}
- /nodes/{node}/disks/zfs: Sys.Audit on /
- /cluster/backup, /cluster/backup-info/not-backed-up: Sys.Audit on / (the list leaves out
  guests without VM.Audit)
- /nodes/{node}/storage/{storage}/content: Datastore.Audit or Datastore.AllocateSpace on
  /storage/{storage}; each backup is listed only with Datastore.Allocate there, or with
  Datastore.AllocateSpace and VM.Backup on /vms/{vmid} (pve-storage `check_volume_access`)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pvewatch.simulator.health import ha_status
from pvewatch.simulator.health.acl import OR_FAILED
from pvewatch.simulator.health.backups import CONTENT_TYPES
from pvewatch.simulator.health.disks import ZFS_MISSING
from pvewatch.simulator.reply import (
    Reply,
    Request,
    bad_params,
    handler_error,
    last_param,
    ok,
    unknown_params,
    unreachable,
)

if TYPE_CHECKING:
    from pvewatch.simulator.cluster import SimCluster

_TRUE, _FALSE = ("1", "on", "yes", "true"), ("0", "off", "no", "false")


@dataclass(slots=True)
class _Call:
    cluster: SimCluster
    user: str
    req: Request
    now: float

    def require(self, path: str, *privileges: str) -> Reply | None:
        message = self.cluster.health.acl.require(self.user, path, privileges)
        return handler_error(403, message) if message else None

    def require_any(self, path: str, *privileges: str) -> Reply | None:
        message = self.cluster.health.acl.require_any(self.user, path, privileges)
        return handler_error(403, message) if message else None

    def may(self, path: str, privilege: str) -> bool:
        return self.cluster.health.acl.has(self.user, path, privilege)

    def node(self, name: str) -> Reply | None:
        return unreachable(name, self.cluster.node_online(name))

    def params(self, *allowed: str) -> Reply | None:
        return unknown_params(self.req.query, set(allowed))


def answer(cluster: SimCluster, user: str, req: Request, rel: str, now: float) -> Reply | None:
    """The reply for a health path; None when `rel` is not one."""
    if req.method != "GET":
        return None
    call, h = _Call(cluster, user, req, now), cluster.health
    match rel.strip("/").split("/"):
        case ["cluster", "ha", "status", "current"]:
            return (
                call.require("/", "Sys.Audit")
                or call.params()
                or ok(ha_status.current(h.ha, cluster, now))
            )
        case ["cluster", "ha", "status", "manager_status"]:
            return (
                call.require("/", "Sys.Audit")
                or call.params()
                or ok(ha_status.manager_status(h.ha, cluster, now))
            )
        case ["cluster", "ceph", "status"]:
            return _ceph(call, None)
        case ["nodes", node, "ceph", "status"]:
            return _ceph(call, node)
        case ["cluster", "replication"]:
            jobs = h.replication.jobs
            rows = [
                j.config(i)
                for i, j in sorted(jobs.items())
                if call.may(f"/vms/{j.guest}", "VM.Audit")
            ]
            return call.params() or ok(rows)
        case ["cluster", "replication", job_id]:
            return call.params() or _replication_job(call, job_id, None)
        case ["nodes", node, "replication"]:
            return call.node(node) or _replication_list(call, node)
        case ["nodes", node, "replication", job_id, "status"]:
            return call.node(node) or call.params() or _replication_job(call, job_id, node)
        case ["cluster", "config", "qdevice"]:
            return call.require("/", "Sys.Audit") or call.params() or ok(h.qdevice.status(now))
        case ["nodes", node, "certificates", "info"]:
            ip = cluster.nodes[node].ip if node in cluster.nodes else "10.0.0.10"
            return call.node(node) or call.params() or ok(h.certificates.info(node, ip))
        case ["nodes", node, "disks", "list"]:
            return _disks(call, node)
        case ["nodes", node, "disks", "zfs"]:
            bad = call.require("/", "Sys.Audit") or call.node(node) or call.params()
            if bad:
                return bad
            if not h.disks.node(node).zfs_installed:
                return handler_error(500, ZFS_MISSING)
            return ok(h.disks.pool_rows(node))
        case ["cluster", "backup"]:
            return call.require("/", "Sys.Audit") or call.params() or ok(h.backups.job_rows(now))
        case ["cluster", "backup-info", "not-backed-up"]:
            visible = {
                g.vmid for g in cluster.guests.values() if call.may(f"/vms/{g.vmid}", "VM.Audit")
            }
            rows = h.backups.not_backed_up(cluster, visible)
            return call.require("/", "Sys.Audit") or call.params() or ok(rows)
        case ["nodes", node, "storage", storage, "content"]:
            return _content(call, node, storage)
    return None


def _ceph(call: _Call, node: str | None) -> Reply:
    bad = call.require_any("/", "Sys.Audit", "Datastore.Audit")
    bad = bad or (call.node(node) if node else None) or call.params()
    if bad:
        return bad
    ceph = call.cluster.health.ceph
    error = ceph.error()
    return handler_error(500, error) if error else ok(ceph.status(call.cluster, call.now))


def _replication_list(call: _Call, node: str) -> Reply:
    bad = call.params("guest")
    guest = last_param(call.req.query, "guest")
    if bad:
        return bad
    if guest is not None and not guest.isdigit():
        return bad_params({"guest": f"type check ('integer') failed - got '{guest}'"})
    book = call.cluster.health.replication
    rows = []
    for job_id in book.on_node(call.cluster, node):
        job = book.jobs[job_id]
        if guest is not None and job.guest != int(guest):
            continue
        if call.may(f"/vms/{job.guest}", "VM.Audit"):
            rows.append(book.status_row(call.cluster, job_id))
    return ok(rows)


def _replication_job(call: _Call, job_id: str, node: str | None) -> Reply:
    book = call.cluster.health.replication
    known = book.on_node(call.cluster, node) if node else list(book.jobs)
    if job_id not in known:
        return handler_error(500, f"no such replication job '{job_id}'\n")
    denied = call.require(f"/vms/{book.jobs[job_id].guest}", "VM.Audit")
    if denied:
        return denied
    row = book.status_row(call.cluster, job_id) if node else book.config_row(job_id)
    return ok(row)


def _disks(call: _Call, node: str) -> Reply:
    if not (call.may("/", "Sys.Audit") or call.may(f"/nodes/{node}", "Sys.Audit")):
        return handler_error(403, OR_FAILED)
    bad = call.node(node) or call.params("include-partitions", "skipsmart", "type")
    if bad:
        return bad
    flags: dict[str, bool] = {}
    for name in ("include-partitions", "skipsmart"):
        raw = (last_param(call.req.query, name) or "0").lower()
        if raw not in _TRUE + _FALSE:
            return bad_params({name: f"type check ('boolean') failed - got '{raw}'"})
        flags[name] = raw in _TRUE
    kind = last_param(call.req.query, "type")
    if kind not in (None, "unused", "journal_disks"):
        enum = "value '{}' does not have a value in the enumeration 'unused, journal_disks'"
        return bad_params({"type": enum.format(kind)})
    rows = call.cluster.health.disks.disk_rows(
        node, flags["include-partitions"], flags["skipsmart"]
    )
    return ok([r for r in rows if _disk_type_matches(r, kind)])


def _disk_type_matches(row: dict[str, Any], kind: str | None) -> bool:
    used = row.get("used")
    if kind == "unused":
        return not used
    if kind == "journal_disks":
        return row["osdid"] < 0 and (
            not used or used == "LVM" or (used == "partitions" and row["gpt"])
        )
    return True


def _content(call: _Call, node: str, storage: str) -> Reply:
    where = f"/storage/{storage}"
    bad = call.require_any(where, "Datastore.Audit", "Datastore.AllocateSpace")
    bad = bad or call.node(node) or call.params("content", "vmid")
    if bad:
        return bad
    content, vmid = last_param(call.req.query, "content"), last_param(call.req.query, "vmid")
    if content is not None and content not in CONTENT_TYPES:
        return bad_params({"content": f"invalid format - invalid content type '{content}'\n"})
    if vmid is not None and not vmid.isdigit():
        return bad_params({"vmid": f"type check ('integer') failed - got '{vmid}'"})
    found = [s for s in call.cluster.storages if s.storage == storage and s.node == node]
    if not found:
        return handler_error(500, f"storage '{storage}' does not exist\n")
    if not found[0].active:
        return handler_error(500, f"storage '{storage}' is not online\n")
    if content not in (None, "backup") or "backup" not in found[0].content.split(","):
        return ok([])
    volumes = call.cluster.health.backups.content(storage, node, bool(found[0].shared))
    allocate = call.may(where, "Datastore.Allocate")
    space = call.may(where, "Datastore.AllocateSpace")
    return ok(
        [
            v.row()
            for v in volumes
            if (vmid is None or v.vmid == int(vmid))
            and (allocate or (space and call.may(f"/vms/{v.vmid}", "VM.Backup")))
        ]
    )
