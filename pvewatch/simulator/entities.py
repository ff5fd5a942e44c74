"""The things a simulated cluster is made of, and how each one renders as a row of
`/cluster/resources` (FACTS.md §2.2-2.5). Pure: no clock, no I/O.

Each entity keeps its config-plane fields (node, lock, tags, pool, existence) and what its
metrics plane last reported; `extra` holds fields merged in through the control API and
is rendered as is, last, so a test can make a row look however it needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Row = dict[str, Any]

# Guests in these states report no live counters (FACTS §2.3: zeros when stopped).
_IDLE_STATES = frozenset({"stopped"})


@dataclass(slots=True)
class Node:
    name: str
    nodeid: int
    ip: str
    boot_at: float
    maxcpu: int
    maxmem: int
    maxdisk: int
    cpu: float
    mem: int
    disk: int
    level: str = ""
    cgroup_mode: int = 2
    hastate: str | None = None
    online: bool = True  # a corosync member: `online` in /cluster/status
    offline_since: float | None = None
    reporting: bool = True  # its pvestatd reports (False: a member shown `unknown`)
    extra: Row = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"node/{self.name}"

    @property
    def status(self) -> str:
        """What /cluster/resources says (FACTS.md §2.5): offline when not a corosync
        member; unknown when a member whose pvestatd no longer reports; else online."""
        if not self.online:
            return "offline"
        return "online" if self.reporting else "unknown"

    def row(self, metrics_at: float, *, fresh: bool) -> Row:
        """`fresh`: the node's last metrics entry is younger than the expiry (§2.9)."""
        row: Row = {"id": self.id, "type": "node", "node": self.name}
        row["status"] = self.status
        if fresh:
            row.update(level=self.level, maxcpu=self.maxcpu, maxmem=self.maxmem)
            row["maxdisk"] = self.maxdisk
        if self.status == "online":
            cycle = int(metrics_at // 10)
            row["uptime"] = max(0, int(metrics_at - self.boot_at))
            row["cpu"] = round(self.cpu * (0.6 + 0.8 * _jitter(self.nodeid, cycle)), 6)
            row["mem"] = self.mem + int(self.mem * 0.02 * _jitter(self.nodeid + 7, cycle))
            row["disk"] = self.disk
        row["cgroup-mode"] = self.cgroup_mode
        if self.hastate is not None:  # the CRM marks a lost node unknown, unless it fences it
            row["hastate"] = self.hastate if self.online or self.hastate != "online" else "unknown"
        row.update(self.extra)
        return row


@dataclass(slots=True)
class Guest:
    type: str  # "qemu" | "lxc"
    vmid: int
    node: str
    name: str
    status: str
    maxcpu: int
    maxmem: int
    maxdisk: int
    cpu: float = 0.0
    mem: int = 0
    disk: int = 0  # LXC rootfs used; QEMU always reports 0
    template: int = 0
    pool: str | None = None
    tags: str | None = None
    lock: str | None = None
    hastate: str | None = None
    started_at: float | None = None
    created_at: float | None = None  # set for guests created while the sim runs
    # Bytes per second, so cumulative counters grow realistically with uptime.
    rates: tuple[int, int, int, int] = (0, 0, 0, 0)
    extra: Row = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.type}/{self.vmid}"

    @property
    def live(self) -> bool:
        return self.status not in _IDLE_STATES

    def row(self, metrics_at: float | None, *, memhost: bool, creating: bool = False) -> Row:
        """`metrics_at` None: no metrics entry, the skeletal `unknown` row of §2.9."""
        row: Row = {"id": self.id, "type": self.type, "vmid": self.vmid, "node": self.node}
        if metrics_at is None:
            row["status"] = "unknown"
        else:
            row["status"] = self.status
            row.update(self._metrics(metrics_at, memhost))
        for key, value in (("pool", self.pool), ("tags", self.tags), ("hastate", self.hastate)):
            if value is not None:
                row[key] = value
        lock = self.lock if self.lock is not None or not creating else "create"
        if lock is not None:
            row["lock"] = lock
        row.update(self.extra)
        return row

    def _metrics(self, at: float, memhost: bool) -> Row:
        live = self.live and self.started_at is not None
        uptime = max(0, int(at - self.started_at)) if live and self.started_at else 0
        cycle = int(at // 10)
        busy = self.status == "running"
        netin, netout, dread, dwrite = (r * uptime for r in self.rates)
        mem = self.mem if live else 0
        row: Row = {
            "name": self.name,
            "uptime": uptime,
            "template": self.template,
            "maxcpu": self.maxcpu,
            "cpu": round(self.cpu * (0.5 + _jitter(self.vmid, cycle)), 6) if busy else 0,
            "maxmem": self.maxmem,
            "mem": mem,
            "maxdisk": self.maxdisk,
            "disk": self.disk if live and self.type == "lxc" else 0,
            "netin": netin,
            "netout": netout,
            "diskread": dread,
            "diskwrite": dwrite,
        }
        if memhost:
            row["memhost"] = int(mem * 1.07) if self.type == "qemu" else 0
        return row


@dataclass(slots=True)
class Storage:
    """One storage as seen from one node (PVE lists shared storages once per node)."""

    storage: str
    node: str
    plugintype: str
    content: str
    shared: int
    disk: int
    maxdisk: int
    active: bool = True
    extra: Row = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"storage/{self.node}/{self.storage}"

    def row(self, *, reporting: bool) -> Row:
        available = self.active and reporting
        row: Row = {
            "id": self.id,
            "storage": self.storage,
            "node": self.node,
            "type": "storage",
            "plugintype": self.plugintype,
            "status": "available" if available else "unknown",
            "shared": self.shared,
            "content": self.content,
        }
        if available:
            row.update(disk=self.disk, maxdisk=self.maxdisk)
        row.update(self.extra)
        return row


@dataclass(slots=True)
class Zone:
    """An SDN zone on one node: `sdn/<node>/<zone>` on PVE 8, `network/...` on PVE 9."""

    zone: str
    node: str
    zone_type: str | None  # None for the built-in localnetwork
    status: str
    extra: Row = field(default_factory=dict)

    def key(self, pve_version: int) -> str:
        if pve_version >= 9:
            return f"network/{self.node}/zone/{self.zone}"
        return f"sdn/{self.node}/{self.zone}"

    def row(self, pve_version: int) -> Row:
        row: Row = {"id": self.key(pve_version), "node": self.node, "status": self.status}
        if pve_version >= 9:
            row.update(type="network", network=self.zone)
            row["network-type"] = "zone"
        else:
            row.update(type="sdn", sdn=self.zone)
        if self.zone_type is not None and pve_version >= 9:
            row["zone-type"] = self.zone_type
        row.update(self.extra)
        return row


def pool_row(name: str, members: list[Row], extra: Row) -> Row:
    """Aggregates over running members (§2.3): sums, max uptime, cpu weighted by maxcpu."""
    row: Row = {"id": f"/pool/{name}", "type": "pool", "pool": name}
    running = [m for m in members if m.get("status") == "running" and "maxcpu" in m]
    if running:
        maxcpu = sum(m["maxcpu"] for m in running)
        weighted = sum(m["cpu"] * m["maxcpu"] for m in running)
        row["uptime"] = max(m["uptime"] for m in running)
        row["cpu"] = round(weighted / maxcpu, 12) if maxcpu else 0
        row["maxcpu"] = maxcpu
        row["mem"] = sum(m["mem"] for m in running)
        row["maxmem"] = sum(m["maxmem"] for m in running)
    row.update(extra)
    return row


def _jitter(key: int, cycle: int) -> float:
    """A cheap deterministic value in [0, 1) that changes every metrics cycle."""
    return ((key * 2654435761 + cycle * 40503) % 1000) / 1000
