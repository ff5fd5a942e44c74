"""Random but realistic changes to a simulated cluster, each with the PVE task that does it:
guests stopped and started, migrated (lock `migrate`, node changes at the end), backed up
(lock `backup`, the vzdump task sometimes fails) and the occasional node reboot.

Deterministic: the randomness comes only from the `rng` passed in and time only from
`now`, so the same seed and the same sequence of `step()` times give the same cluster.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pvewatch.simulator.entities import Guest
from pvewatch.simulator.health.vzdump import finish_churn_backup

if TYPE_CHECKING:
    from pvewatch.simulator.cluster import SimCluster

USERS = ("root@pam", "alice@pve", "automation@pve!ci")
BACKUP_ERRORS = ("job errors", "backup write data failed: Input/output error")


@dataclass(slots=True)
class PendingOp:
    due: float
    kind: str  # "power" | "migrate" | "backup" | "boot"
    target: str  # guest id, or node name for "boot"
    upid: str | None = None
    result: str = "OK"
    dest: str | None = None  # new status for "power", new node for "migrate"


def step(cluster: SimCluster, rng: random.Random, now: float) -> None:
    complete_due(cluster, now)
    if cluster.raw_rows is not None:
        return  # a replaced list is served as given, untouched
    actions: list[Callable[[SimCluster, random.Random, float], None]] = [
        _power,
        _migrate,
        _backup,
        _reboot,
    ]
    rng.choices(actions, weights=(10, 3, 4, 1))[0](cluster, rng, now)


def complete_due(cluster: SimCluster, now: float) -> None:
    due = sorted((op for op in cluster.pending if op.due <= now), key=lambda op: op.due)
    for op in due:
        if _complete(cluster, op):
            cluster.pending.remove(op)


def _complete(cluster: SimCluster, op: PendingOp) -> bool:
    """False: not yet (its node is offline, so its task list looks frozen)."""
    if op.kind == "boot":
        cluster.set_node_online(op.target, True, op.due, reboot=True)
        return True
    guest = cluster.guests.get(op.target)
    node = cluster.nodes.get(guest.node) if guest else None
    if node is not None and not node.online:
        return False
    if guest is not None and op.result == "OK":
        if op.kind == "power" and op.dest:
            guest.status = op.dest
            guest.started_at = op.due if op.dest == "running" else None
        elif op.kind == "migrate" and op.dest in cluster.nodes:
            guest.node = op.dest
    if guest is not None and op.kind in ("migrate", "backup"):
        guest.lock = None
    if op.upid:
        cluster.finish_task(op.upid, op.result, op.due)
        if op.kind == "backup":  # its volume and the vzdump notification (health/vzdump.py)
            finish_churn_backup(cluster, op.target, op.upid, op.result, op.due)
    cluster.changed()
    return True


def _eligible(cluster: SimCluster) -> list[Guest]:
    busy = {op.target for op in cluster.pending}
    return [
        g
        for g in cluster.guests.values()
        if not g.template
        and g.lock is None
        and g.id not in busy
        and g.node in cluster.nodes
        and cluster.nodes[g.node].online
    ]


def _power(cluster: SimCluster, rng: random.Random, now: float) -> None:
    guests = _eligible(cluster)
    if not guests:
        return
    guest = rng.choice(guests)
    stop = guest.live
    prefix = "qm" if guest.type == "qemu" else "vz"
    kind = prefix + (rng.choice(("stop", "shutdown")) if stop else "start")
    failed = not stop and rng.random() < 0.05
    result = "start failed: QEMU exited with code 1" if failed else "OK"
    log = [f"{_stamp(now)} {kind} {guest.vmid}"]
    task = cluster.start_task(guest.node, kind, str(guest.vmid), rng.choice(USERS), now, log)
    due = now + rng.uniform(1, 6)
    cluster.pending.append(
        PendingOp(due, "power", guest.id, task.upid, result, "stopped" if stop else "running")
    )


def _migrate(cluster: SimCluster, rng: random.Random, now: float) -> None:
    guests = _eligible(cluster)
    online = [n for n in cluster.nodes.values() if n.online]
    if not guests or len(online) < 2:
        return
    guest = rng.choice(guests)
    dest = rng.choice([n for n in online if n.name != guest.node])
    kind = "qmigrate" if guest.type == "qemu" else "vzmigrate"
    log = [f"{_stamp(now)} starting migration of {guest.id} to node '{dest.name}' ({dest.ip})"]
    task = cluster.start_task(guest.node, kind, str(guest.vmid), rng.choice(USERS), now, log)
    guest.lock = "migrate"
    result = "migration aborted" if rng.random() < 0.1 else "OK"
    due = now + rng.uniform(5, 40)
    cluster.pending.append(PendingOp(due, "migrate", guest.id, task.upid, result, dest.name))


def _backup(cluster: SimCluster, rng: random.Random, now: float) -> None:
    guests = _eligible(cluster)
    if not guests:
        return
    guest = rng.choice(guests)
    log = [f"INFO: starting new backup job: vzdump {guest.vmid} --storage nfs-backup"]
    task = cluster.start_task(guest.node, "vzdump", str(guest.vmid), "root@pam", now, log)
    guest.lock = "backup"
    result = rng.choice(BACKUP_ERRORS) if rng.random() < 0.15 else "OK"
    due = now + rng.uniform(10, 60)
    cluster.pending.append(PendingOp(due, "backup", guest.id, task.upid, result))


def _reboot(cluster: SimCluster, rng: random.Random, now: float) -> None:
    online = [n for n in cluster.nodes.values() if n.online]
    if len(online) < 2:  # never take the last node down: the cluster would be gone
        return
    node = rng.choice(online)
    cluster.set_node_online(node.name, False, now)
    cluster.pending.append(PendingOp(now + rng.uniform(30, 120), "boot", node.name))


def _stamp(now: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now))
