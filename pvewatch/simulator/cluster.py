"""The simulated cluster: its state and what the read endpoints of the PVE API show of it
at a given time. Pure: no sockets; the clock is injected so tests can move it.

Two clocks, as on real PVE (FACTS.md §8): config-plane edits (lock, tags, node, pool,
existence) show at once; the metrics plane reports once per `cycle_secs`, an offline
node's guests keep their last values for `offline_expiry_secs`, then turn `unknown`.
A guest created while the simulator runs is `unknown` with `lock: create` for one cycle.

`replace_resources()` switches to raw mode: a given list (e.g. a captured real answer)
is served as is, with no timeline and no churn, until `reset_resources()`.

The server calls every method with `lock` held; the background churn does the same.
"""

from __future__ import annotations

import copy
import random
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from pvewatch.simulator import SimOptions, churn
from pvewatch.simulator.build import build_layout
from pvewatch.simulator.edits import (
    ControlError,
    membership,
    merge_fields,
    merge_row,
    node_status,
)
from pvewatch.simulator.entities import Guest, Node, Row, pool_row
from pvewatch.simulator.health.state import HealthState
from pvewatch.simulator.tasks import Task, TaskBook

TYPE_FILTERS = ("vm", "storage", "node", "sdn")
_VERSIONS = {
    8: {"version": "8.4.1", "release": "8.4", "repoid": "2a5fa54a8503f96d"},
    9: {"version": "9.1.9", "release": "9.1", "repoid": "3f2c1b0a9e8d7c6b"},
}


class SimCluster:
    def __init__(
        self,
        options: SimOptions,
        clock: Callable[[], float] = time.time,
        cycle_secs: float = 10.0,
    ) -> None:
        self.options = options
        self.clock = clock
        self.cycle_secs = cycle_secs
        self.lock = threading.RLock()
        layout = build_layout(options, clock())
        self.nodes = layout.nodes
        self.guests = layout.guests
        self.storages = layout.storages
        self.zones = layout.zones
        self.pools = layout.pools
        self.pool_extra: dict[str, Row] = {}
        self.tasks = TaskBook()
        self.pending: list[churn.PendingOp] = []
        self.raw_rows: list[Row] | None = None
        self.raw_members: dict[str, bool] = {}  # corosync membership set in raw mode
        self._edits = 0  # bumped on every change, so cached bodies know when to rebuild
        self._creating: set[str] = set()
        self._next_pid = 4000 + options.seed % 1000
        self.health = HealthState(self, clock())  # HA, Ceph, replication, backups... (health/)

    # --- what the API shows ------------------------------------------------------------

    def render_key(self, now: float) -> Hashable:
        """Equal keys mean `resources()` renders the same rows."""
        if self.raw_rows is not None:
            return ("raw", self._edits)
        expired = tuple(n.name for n in self.nodes.values() if self._expired(n, now))
        return (self._edits, int(now // self.cycle_secs), expired, self._still_creating(now))

    def resources(self, type_filter: str | None, now: float) -> list[Row]:
        rows = self.raw_rows if self.raw_rows is not None else self._render(now)
        if type_filter is None:
            return rows
        wanted = {"qemu", "lxc"} if type_filter == "vm" else {type_filter}
        return [r for r in rows if r.get("type") in wanted]

    def cluster_status(self) -> list[Row]:
        nodes = self._status_nodes()
        entries: list[Row] = []
        online = sum(1 for _, up in nodes if up)
        if len(nodes) > 1:
            entries.append(
                {"type": "cluster", "id": "cluster", "name": "pvewatch-sim"}
                | {"nodes": len(nodes), "version": 3, "quorate": int(online * 2 > len(nodes))}
            )
        for i, (name, up) in enumerate(nodes):
            node = self.nodes.get(name)
            entries.append(
                {"type": "node", "id": f"node/{name}", "name": name}
                | {"nodeid": (i + 1) if len(nodes) > 1 else 0, "local": int(i == 0)}
                | {"online": int(up), "level": "", "ip": node.ip if node else f"10.0.1.{i + 1}"}
            )
        return entries

    def version_info(self) -> Row:
        return dict(_VERSIONS.get(self.options.pve_version, _VERSIONS[9]))

    def node_online(self, name: str) -> bool | None:
        """None: no such node."""
        return dict(self._status_nodes()).get(name)

    def task_rows(self) -> list[Row]:
        names = [name for name, _ in self._status_nodes()]
        return self.tasks.rows(names)

    # --- changes (control API and churn) ----------------------------------------------

    def changed(self) -> None:
        self._edits += 1

    def replace_resources(self, rows: list[Row]) -> None:
        self.raw_rows = copy.deepcopy(rows)
        self.raw_members.clear()
        self.changed()

    def reset_resources(self) -> None:
        self.raw_rows = None
        self.raw_members.clear()
        self.changed()

    def patch(self, rid: str, fields: Row, now: float) -> None:
        self.changed()
        if self.raw_rows is not None:
            fields = dict(fields)
            member = fields.pop("corosync", None) if rid.startswith("node/") else None
            merge_row(self._raw_row(rid), fields)
            if member is not None:
                self.raw_members[rid[len("node/") :]] = membership(member, rid)
            return
        fields = dict(fields)
        if rid.startswith("node/"):
            node = self._node(rid)
            status = fields.pop("status", None)
            member = fields.pop("corosync", None)
            status = node_status(status, rid) if status is not None else None
            member = membership(member, rid) if member is not None else None
            if status is not None:
                self.set_node_status(node.name, status, now)
            if member is not None:
                self.set_node_online(node.name, member, now)
            merge_fields(node, fields, rid)
        elif rid in self.guests:
            self._patch_guest(self.guests[rid], fields, now)
        elif rid.startswith("/pool/"):
            if rid[len("/pool/") :] not in self.pools:
                raise ControlError(f"{rid}: no such pool")
            merge_row(self.pool_extra.setdefault(rid[len("/pool/") :], {}), fields)
        else:
            entity = self._other(rid)
            status = fields.pop("status", None) if rid.startswith("storage/") else None
            if status is not None:
                entity.active = status == "available"
            merge_fields(entity, fields, rid)

    def delete(self, rid: str) -> None:
        self.changed()
        if self.raw_rows is not None:
            self.raw_rows.remove(self._raw_row(rid))
        elif rid.startswith("node/"):
            name = self._node(rid).name
            del self.nodes[name]
            self.storages = [s for s in self.storages if s.node != name]
            self.zones = [z for z in self.zones if z.node != name]
        elif rid in self.guests:
            del self.guests[rid]
        elif rid.startswith("/pool/") and rid[len("/pool/") :] in self.pools:
            self.pools.remove(rid[len("/pool/") :])
            for guest in self.guests.values():
                guest.pool = None if guest.pool == rid[len("/pool/") :] else guest.pool
        else:
            entity = self._other(rid)
            self.storages = [s for s in self.storages if s is not entity]
            self.zones = [z for z in self.zones if z is not entity]

    def create_guest(self, fields: Row, now: float) -> str:
        """A new guest: `unknown` with `lock: create` for one cycle, then as given."""
        fields = dict(fields)
        kind, _, vmid_text = str(fields.pop("id", "")).partition("/")
        kind = str(fields.pop("type", kind or "qemu"))
        vmid = fields.pop("vmid", None) or (int(vmid_text) if vmid_text.isdigit() else None)
        if kind not in ("qemu", "lxc") or not isinstance(vmid, int) or vmid < 100:
            raise ControlError("new guest: needs type qemu|lxc and a vmid >= 100")
        if f"{kind}/{vmid}" in self.guests:
            raise ControlError(f"{kind}/{vmid}: already exists")
        node = str(fields.pop("node", next(iter(self.nodes), "pve1")))
        name = f"VM {vmid}" if kind == "qemu" else f"CT{vmid}"
        guest = Guest(kind, vmid, node, name, "stopped", 2, 2 * 1024**3, 32 * 1024**3)
        guest.created_at = now
        self.guests[guest.id] = guest
        self._creating.add(guest.id)
        self._patch_guest(guest, fields, now)
        self.changed()
        return guest.id

    def set_node_status(self, name: str, status: str, now: float) -> None:
        """online: a member whose pvestatd reports; offline: not a corosync member (the
        offline timeline); unknown: a member whose pvestatd stopped reporting long enough
        ago that its metrics expired (FACTS.md §2.9 #5): its guests and storages are
        unknown too, and /cluster/status still counts it online."""
        node = self._node(f"node/{name}")
        if status == "offline":
            self.set_node_online(name, False, now)
            return
        node.reporting = status == "online"
        self.set_node_online(name, True, now)

    def set_node_online(self, name: str, online: bool, now: float, reboot: bool = False) -> None:
        """Corosync membership; a reboot also restarts pvestatd."""
        node = self._node(f"node/{name}")
        if online and reboot:
            node.boot_at = now
            node.reporting = True
            for guest in self.guests.values():
                if guest.node == name and guest.live:
                    guest.started_at = now
        node.online = online
        node.offline_since = None if online else (node.offline_since or now)
        self.changed()

    def start_task(
        self, node: str, kind: str, object_id: str, user: str, now: float, log: list[str]
    ) -> Task:
        self._next_pid += 1
        boot = self.nodes[node].boot_at if node in self.nodes else now - 86_400
        pstart = int((now - boot) * 100)  # clock ticks since boot (USER_HZ 100)
        task = Task(node, self._next_pid, pstart, int(now), kind, object_id, user, log=log)
        self.changed()
        return self.tasks.add(task)

    def finish_task(self, upid: str, status: str, now: float) -> Task:
        task = self.tasks.finish(upid, status, now)
        if task is None:
            raise ControlError(f"task {upid}: no such task")
        self.changed()
        return task

    def step(self, rng: random.Random, now: float) -> None:
        """One churn event: finish what is due, then maybe start one random action."""
        churn.step(self, rng, now)

    def complete_due(self, now: float) -> None:
        churn.complete_due(self, now)

    # --- internals ---------------------------------------------------------------------

    def _render(self, now: float) -> list[Row]:
        version = self.options.pve_version
        creating = set(self._still_creating(now))
        guests = [
            g.row(
                self._guest_metrics_at(g, now, creating),
                memhost=version >= 9,
                creating=g.id in creating,
            )
            for g in sorted(self.guests.values(), key=lambda g: str(g.vmid))
        ]
        pools = [
            pool_row(p, [g for g in guests if g.get("pool") == p], self.pool_extra.get(p, {}))
            for p in sorted(self.pools)
        ]
        nodes = [
            n.row(self._metrics_at(n, now), fresh=not self._expired(n, now))
            for n in self.nodes.values()
        ]
        storages = [
            s.row(reporting=s.node in self.nodes and not self._expired(self.nodes[s.node], now))
            for s in self.storages
        ]
        zones = [z.row(version) for z in self.zones]
        return pools + guests + nodes + storages + zones

    def _guest_metrics_at(self, guest: Guest, now: float, creating: set[str]) -> float | None:
        node = self.nodes.get(guest.node)
        if node is None or guest.id in creating or self._expired(node, now):
            return None
        return self._metrics_at(node, now)

    def _metrics_at(self, node: Node, now: float) -> float:
        """When the node's pvestatd last reported (frozen while it is offline)."""
        at = now if node.offline_since is None else node.offline_since
        return (at // self.cycle_secs) * self.cycle_secs

    def _expired(self, node: Node, now: float) -> bool:
        """Whether the node's metrics entry is gone: its pvestatd stopped reporting, or it
        left corosync at least `offline_expiry_secs` ago."""
        since = node.offline_since
        gone = since is not None and now - since >= self.options.offline_expiry_secs
        return gone or not node.reporting

    def _still_creating(self, now: float) -> tuple[str, ...]:
        done = {
            gid
            for gid in self._creating
            if gid not in self.guests or now - (self.guests[gid].created_at or 0) >= self.cycle_secs
        }
        self._creating -= done
        return tuple(sorted(self._creating))

    def _status_nodes(self) -> list[tuple[str, bool]]:
        """Each node and whether it is a corosync member: `online` in /cluster/status. A
        node whose resources row says unknown (pvestatd silent) is still a member."""
        if self.raw_rows is None:
            return [(n.name, n.online) for n in self.nodes.values()]
        found = []
        for row in self.raw_rows:
            if row.get("type") == "node":
                name = str(row.get("node"))
                member = row.get("status") in ("online", "unknown")
                found.append((name, self.raw_members.get(name, member)))
        return found

    def _patch_guest(self, guest: Guest, fields: Row, now: float) -> None:
        status = fields.get("status")
        if isinstance(status, str) and status != guest.status:
            was_live = guest.live
            guest.status = status
            if guest.live and not was_live:
                guest.started_at = now
        uptime = fields.pop("uptime", None)
        if isinstance(uptime, int | float) and guest.live:
            guest.started_at = now - uptime
        merge_fields(guest, fields, guest.id)
        if guest.pool is not None and guest.pool not in self.pools:
            self.pools.append(guest.pool)

    def _node(self, rid: str) -> Node:
        node = self.nodes.get(rid[len("node/") :])
        if node is None:
            raise ControlError(f"{rid}: no such node")
        return node

    def _other(self, rid: str) -> Any:
        for entity in self.storages:
            if entity.id == rid:
                return entity
        for zone in self.zones:
            if zone.key(self.options.pve_version) == rid:
                return zone
        raise ControlError(f"{rid}: no such resource")

    def _raw_row(self, rid: str) -> Row:
        assert self.raw_rows is not None
        for row in self.raw_rows:
            if row.get("id") == rid:
                return row
        raise ControlError(f"{rid}: no such resource")
