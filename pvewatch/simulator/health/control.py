"""The `/_sim/` control paths of the health endpoints (docs/simulator-health.md lists
them with examples). Each checks its whole request before it changes anything: a bad one
answers 400 with the reason and applies nothing. Call with the cluster lock held.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pvewatch.simulator.edits import ControlError
from pvewatch.simulator.health import notify_spec, vzdump
from pvewatch.simulator.health.notifier import Notifier
from pvewatch.simulator.reply import Reply, encode

if TYPE_CHECKING:
    from pvewatch.simulator.cluster import SimCluster

FAMILIES = (
    "acl", "paths", "ha", "ceph", "replication", "qdevice", "certificates", "disks", "zfs",
    "backups", "backup-jobs", "vzdump", "notify",
)  # fmt: skip


def handle(
    cluster: SimCluster, notifier: Notifier, method: str, path: str, body: Any
) -> Reply | None:
    """The reply for `path` (after /_sim), or None when it is not a health control path."""
    parts = path.strip("/").split("/")
    if parts[0] not in FAMILIES:
        return None
    now, h = cluster.clock(), cluster.health
    call = (method, *parts)
    match call:
        case ("GET", "acl"):
            return _ok(h.acl.snapshot())
        case ("DELETE", "acl"):
            h.acl.clear()
        case ("PUT", "acl", userid):
            h.acl.set(userid, body)
        case ("DELETE", "acl", userid):
            h.acl.clear(userid)
        case ("GET", "paths"):
            return _ok(h.overrides.listing())
        case ("PUT", "paths"):
            return _ok({"path": h.overrides.put(body)})
        case ("DELETE", "paths"):
            return _ok({"removed": h.overrides.delete(body)})
        case ("PUT", "ha", "nodes", node):
            h.outbox += h.ha.put_node(cluster, node, body, now)
        case ("PUT", "ha", sid):
            h.ha.put_service(cluster, sid, body)
        case ("DELETE", "ha", sid):
            h.ha.delete_service(cluster, sid)
        case ("PUT", "ceph"):
            h.ceph.put(body)
        case ("DELETE", "ceph"):
            h.ceph.reset()
        case ("PUT", "replication", job_id):
            h.outbox += h.replication.put(cluster, job_id, body, now)
        case ("DELETE", "replication", job_id):
            h.replication.delete(job_id)
        case ("PUT", "qdevice"):
            h.qdevice.put(body, now)
        case ("DELETE", "qdevice"):
            h.qdevice.reset()
        case ("PUT", "certificates", node, filename):
            h.certificates.put(node, _ip(cluster, node), filename, body)
        case ("DELETE", "certificates", node, filename):
            h.certificates.delete(node, _ip(cluster, node), filename)
        case ("PUT", "disks", node, dev):
            h.disks.put_disk(_node(cluster, node), dev, body)
        case ("DELETE", "disks", node, dev):
            h.disks.delete_disk(_node(cluster, node), dev)
        case ("PUT", "zfs", node):
            h.disks.put_zfs(_node(cluster, node), body)
        case ("PUT", "zfs", node, pool):
            h.disks.put_pool(_node(cluster, node), pool, body)
        case ("DELETE", "zfs", node, pool):
            h.disks.delete_pool(_node(cluster, node), pool)
        case ("PUT", "backups", vmid):
            h.backups.set_last_backup(cluster, vmid, body)
        case ("PUT", "backup-jobs", job_id):
            h.backups.put_job(cluster, job_id, body)
        case ("DELETE", "backup-jobs", job_id):
            h.backups.delete_job(job_id)
        case ("POST", "vzdump"):
            result, notices = vzdump.run(cluster, body, now)
            h.outbox += notices
            return _ok(result)
        case ("POST", "notify"):
            return _ok(notifier.submit(notify_spec.build(cluster, body, now)))
        case ("GET", "notify", "sent"):
            return _ok(notifier.sent())
        case ("DELETE", "notify", "sent"):
            notifier.clear()
        case ("GET", "notify", "target"):
            return _ok(notifier.target())
        case ("PUT", "notify", "target"):
            return _ok(notifier.configure(body))
        case _:
            return Reply(
                404,
                "Not Found",
                encode({"message": f"{method} /_sim{path}: no such control endpoint"}),
            )
    return _ok({})


def _node(cluster: SimCluster, name: str) -> str:
    if cluster.node_online(name) is None:
        raise ControlError(f"{name}: no such node")
    return name


def _ip(cluster: SimCluster, name: str) -> str:
    _node(cluster, name)
    node = cluster.nodes.get(name)
    return node.ip if node else "10.0.0.10"


def _ok(payload: Any) -> Reply:
    return Reply(200, "OK", encode(payload))
