"""Row builders in the shape of /cluster/resources (FACTS §2, §9.1), for the watch tests."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pvewatch.model import Event, Snapshot
from pvewatch.watch.diff import diff
from pvewatch.watch.normalize import carry_forward, normalize

# The repo sits beside a copy of shared/ (locally /work/main and /work/shared).
CAPTURED = Path(__file__).resolve().parents[2] / ".." / "shared" / "pve-api" / "captured"
NOW = datetime(2026, 8, 20, 9, 15, tzinfo=UTC)
CLUSTER = "demo"

Row = dict[str, Any]


def _with(row: Row, fields: dict[str, Any]) -> Row:
    """Apply overrides; None removes the key (PVE omits unset fields)."""
    for key, value in fields.items():
        if value is None:
            row.pop(key, None)
        else:
            row[key] = value
    return row


def vm(vmid: int = 100, **fields: Any) -> Row:
    row: Row = {
        "id": f"qemu/{vmid}",
        "type": "qemu",
        "vmid": vmid,
        "node": "pve1",
        "name": "web1",
        "status": "running",
        "template": 0,
        "uptime": 864000,
        "cpu": 0.0523,
        "maxcpu": 4,
        "mem": 3221225472,
        "maxmem": 8589934592,
        "netin": 18734522311,
    }
    return _with(row, fields)


def ct(vmid: int = 200, **fields: Any) -> Row:
    row = vm(vmid, name="dns01")
    row.update(id=f"lxc/{vmid}", type="lxc")
    return _with(row, fields)


def skeletal(guest: Row, **fields: Any) -> Row:
    """What PVE sends for a guest without metrics (FACTS §2.9 step 3)."""
    keep = ("id", "vmid", "node", "type", "pool", "lock", "tags", "hastate")
    row = {k: guest[k] for k in keep if k in guest} | {"status": "unknown"}
    return _with(row, fields)


def node(name: str = "pve1", **fields: Any) -> Row:
    row: Row = {"id": f"node/{name}", "type": "node", "node": name, "status": "online"}
    row.update({"level": "", "cgroup-mode": 2, "uptime": 1884312, "cpu": 0.04, "maxcpu": 16})
    return _with(row, fields)


def storage(name: str = "local-lvm", on: str = "pve1", **fields: Any) -> Row:
    row: Row = {
        "id": f"storage/{on}/{name}",
        "type": "storage",
        "storage": name,
        "node": on,
        "plugintype": "lvmthin",
        "status": "available",
        "shared": 0,
        "content": "rootdir,images",
        "disk": 53687091200,
        "maxdisk": 1869169754112,
    }
    return _with(row, fields)


def pool(name: str = "production", **fields: Any) -> Row:
    return _with({"id": f"/pool/{name}", "type": "pool", "pool": name}, fields)


def sdn(zone: str = "lab", on: str = "pve1", **fields: Any) -> Row:
    row: Row = {"id": f"sdn/{on}/{zone}", "type": "sdn", "sdn": zone, "node": on}
    return _with(row | {"status": "available"}, fields)


def network(name: str = "lab", on: str = "pve1", kind: str = "zone", **fields: Any) -> Row:
    row: Row = {"id": f"network/{on}/{kind}/{name}", "type": "network", "network": name}
    row.update({"network-type": kind, "node": on, "status": "available"})
    return _with(row, fields)


def snap(rows: Iterable[object], now: datetime = NOW) -> Snapshot:
    return normalize(CLUSTER, rows, now)


def poll(old: Snapshot | None, rows: Iterable[object], now: datetime = NOW) -> Snapshot:
    """One poll as the pipeline does it: normalize, then carry unknown guests forward."""
    return carry_forward(old, snap(rows, now))


def events_between(old_rows: list[Row], new_rows: list[Row], now: datetime = NOW) -> list[Event]:
    old = snap(old_rows)
    return diff(old, poll(old, new_rows, now), now)


def load_captured(path: Path) -> list[Any]:
    data = json.loads(path.read_text())["data"]
    assert isinstance(data, list)
    return data
