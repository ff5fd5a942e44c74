"""The HA state behind `/cluster/ha/status/current` and `/manager_status` (rendered by
ha_status.py) and its `/_sim/ha/` edits (pve-ha-manager; FACTS-health.md §1).

A service's CRM state is its guest's `hastate` (so `/cluster/resources` and the HA status
always agree); its configuration (requested state, restart limits, comment) lives here.
The layout's HA guests are services from the start; a cluster with none and no HA
history answers the not-set-up shape (`[quorum]` on PVE 8, `[quorum, fencing standby]` on
PVE 9). The CRM and LRMs report every 10 s; an offline node's LRM timestamp freezes, so
it reads `old timestamp - dead?` 30 s later, as on PVE. The master is the first online node.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pvewatch.simulator.edits import ControlError
from pvewatch.simulator.health import fields
from pvewatch.simulator.health.notices import Notice, fencing_notice

if TYPE_CHECKING:
    from pvewatch.simulator.cluster import SimCluster
    from pvewatch.simulator.entities import Guest

CRM_STATES = (  # Manager.pm $valid_service_states
    "stopped",
    "request_stop",
    "request_start",
    "request_start_balance",
    "started",
    "fence",
    "recovery",
    "migrate",
    "relocate",
    "freeze",
    "error",
)
REQUEST_STATES = ("started", "stopped", "disabled", "ignored")
NODE_STATES = ("online", "maintenance", "unknown", "fence", "gone")
_SID_TYPES = {"vm": "qemu", "ct": "lxc"}
_CYCLE_SECS = 10


@dataclass(slots=True)
class Service:
    request_state: str = "started"
    max_restart: int = 1
    max_relocate: int = 1
    group: str | None = None  # HA groups exist up to PVE 8 (PVE 9 has rules)
    comment: str | None = None


class HaState:
    def __init__(self, guests: dict[str, Guest]) -> None:
        self.services = {sid_of(g): Service() for g in guests.values() if g.hastate}
        self.used = bool(self.services)  # the manager status exists once HA was used
        self.node_status: dict[str, str] = {}  # set through the control API

    # --- control ---------------------------------------------------------------------

    def put_service(self, cluster: SimCluster, sid: str, body: Any) -> None:
        where = f"/_sim/ha/{sid}"
        spec = fields.body_object(
            body,
            where,
            ("state", "request_state", "node", "max_restart", "max_relocate", "group", "comment"),
        )
        guest = _guest(cluster, sid)
        service = dataclasses.replace(self.services.get(sid, Service()))  # applied when valid
        state = fields.choice(
            spec.get("state", guest.hastate or "started"), where, "state", CRM_STATES
        )
        request = spec.get("request_state", service.request_state)
        service.request_state = fields.choice(request, where, "request_state", REQUEST_STATES)
        for key in ("max_restart", "max_relocate"):
            if key in spec:
                setattr(service, key, fields.integer(spec[key], where, key))
        for key in ("group", "comment"):
            if key in spec:
                setattr(
                    service, key, None if spec[key] is None else fields.text(spec[key], where, key)
                )
        node = spec.get("node")
        if node is not None and node not in cluster.nodes:
            raise ControlError(f"{where}: no such node {node!r}")
        self.services[sid] = service
        self.used = True
        for each in cluster.nodes.values():  # the CRM now reports every node
            each.hastate = each.hastate or "online"
        guest.hastate = state
        if node is not None:
            guest.node = node
        cluster.changed()

    def delete_service(self, cluster: SimCluster, sid: str) -> None:
        guest = _guest(cluster, sid)
        if self.services.pop(sid, None) is None:
            raise ControlError(f"/_sim/ha/{sid}: not an HA resource")
        guest.hastate = None
        cluster.changed()

    def put_node(self, cluster: SimCluster, name: str, body: Any, now: float) -> list[Notice]:
        """A node's CRM state. Entering `fence` puts its services into `fence` and sends
        `Trying to fence node`; leaving `fence` (fenced: `unknown`) moves them to
        `recovery` and sends `Successfully fenced node`, as NodeStatus.pm `fence_node`."""
        where = f"/_sim/ha/nodes/{name}"
        spec = fields.body_object(body, where, ("state", "notify"))
        state = fields.choice(spec.get("state"), where, "state", NODE_STATES)
        notify = fields.flag(spec.get("notify", 1), where, "notify")
        node = cluster.nodes.get(name)
        if node is None:
            raise ControlError(f"{where}: no such node")
        before = self.node_state(cluster, name)
        self.node_status[name] = state
        node.hastate = state
        self.used = True
        here = [g for g in cluster.guests.values() if g.node == name and sid_of(g) in self.services]
        sent: list[Notice] = []
        if state == "fence" and before != "fence":
            for guest in here:
                if guest.hastate not in ("stopped", "error", "freeze"):
                    guest.hastate = "fence"
            sent.append(self._fence_notice(cluster, name, now, succeeded=False))
        elif before == "fence" and state != "fence":
            for guest in here:
                if guest.hastate == "fence":
                    guest.hastate = "recovery"
            sent.append(self._fence_notice(cluster, name, now, succeeded=True))
        cluster.changed()
        return sent if notify else []

    # --- what the API shows ----------------------------------------------------------

    def node_state(self, cluster: SimCluster, name: str) -> str:
        if name in self.node_status:
            return self.node_status[name]
        return "online" if cluster.node_online(name) else "unknown"

    def master(self, cluster: SimCluster) -> str:
        online = [n for n in cluster.nodes if cluster.node_online(n)]
        return online[0] if online else local_node(cluster)

    def lrm_mode(self, cluster: SimCluster, name: str) -> str:
        return "maintenance" if self.node_state(cluster, name) == "maintenance" else "active"

    def lrm_state(self, cluster: SimCluster, name: str) -> str:
        active = [
            g
            for g in cluster.guests.values()
            if g.node == name
            and sid_of(g) in self.services
            and g.hastate not in (None, "stopped", "freeze", "error", "request_start")
        ]
        return "active" if active else "wait_for_agent_lock"

    def lrm_stamp(self, cluster: SimCluster, name: str, now: float) -> int:
        node = cluster.nodes[name]
        return stamp(now if node.offline_since is None else node.offline_since)

    def _fence_notice(self, cluster: SimCluster, name: str, now: float, succeeded: bool) -> Notice:
        nodes = {n: self.node_state(cluster, n) for n in sorted(cluster.nodes)}
        resources = [
            (sid_of(g), g.node, g.hastate or "")
            for g in sorted(cluster.guests.values(), key=sid_of)
            if sid_of(g) in self.services
        ]
        return fencing_notice(name, self.master(cluster), nodes, resources, now, succeeded)


def sid_of(guest: Guest) -> str:
    return f"{'vm' if guest.type == 'qemu' else 'ct'}:{guest.vmid}"


def find(cluster: SimCluster, sid: str) -> Guest | None:
    kind, _, vmid = sid.partition(":")
    return cluster.guests.get(f"{_SID_TYPES.get(kind, '')}/{vmid}")


def _guest(cluster: SimCluster, sid: str) -> Guest:
    kind, _, vmid = sid.partition(":")
    if kind not in _SID_TYPES or not vmid.isdigit():
        raise ControlError(f"/_sim/ha/{sid}: an HA resource id is vm:<vmid> or ct:<vmid>")
    guest = find(cluster, sid)
    if guest is None:
        raise ControlError(f"/_sim/ha/{sid}: no such guest {_SID_TYPES[kind]}/{vmid}")
    return guest


def stamp(at: float) -> int:
    """The CRM and the LRMs write their status every 10 s."""
    return int(at // _CYCLE_SECS * _CYCLE_SECS)


def local_node(cluster: SimCluster) -> str:
    """The node answering the API (the first one)."""
    return next(iter(cluster.nodes), "pve1")
