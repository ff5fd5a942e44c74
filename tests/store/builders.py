"""Events, resources and snapshots for the store tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pvewatch.model import Change, Event, Resource, ResourceRef, Severity, Snapshot

T0 = datetime(2026, 11, 28, 1, 2, 3, tzinfo=UTC)
CAPTURED = Path(__file__).resolve().parents[2] / ".." / "shared" / "pve-api" / "captured"
_FIELDS = {"id", "type", "status", "node", "name", "vmid", "pool", "tags", "template", "content"}
_COUNTERS = {"cpu", "mem", "maxmem", "disk", "maxdisk", "maxcpu", "uptime", "netin", "netout"}
_COUNTERS |= {"diskread", "diskwrite"}


def event(
    n: int,
    *,
    cluster: str = "prod",
    type_: str = "guest.stopped",
    time: datetime | None = None,
    resource_id: str = "qemu/100",
) -> Event:
    return Event(
        id=f"evt_{cluster}_{n}",
        type=type_,
        time=time or T0 + timedelta(seconds=n),
        cluster=cluster,
        severity=Severity.WARNING,
        summary=f"event {n}",
        resource=ResourceRef(resource_id, resource_id.split("/")[0]),
        change=Change("status", "running", "stopped"),
    )


def resources(count: int, *, status: str = "running") -> dict[str, Resource]:
    return {
        f"qemu/{i}": Resource(
            id=f"qemu/{i}", type="qemu", status=status, node="pve1", name=f"vm{i}", vmid=i
        )
        for i in range(count)
    }


def snapshot(res: dict[str, Resource], *, cluster: str = "prod", n: int = 0) -> Snapshot:
    return Snapshot(cluster, res, T0 + timedelta(seconds=n))


def _split(value: Any) -> tuple[str, ...]:
    return tuple(sorted(p for p in str(value or "").replace(",", ";").split(";") if p))


def captured_resources(name: str) -> dict[str, Resource]:
    """A real /cluster/resources answer, reduced the way normalize does (roughly)."""
    rows = json.loads((CAPTURED / name).read_text())["data"]
    out = {}
    for row in rows:
        out[row["id"]] = Resource(
            id=row["id"],
            type=row["type"],
            status=row.get("status"),
            node=row.get("node"),
            name=row.get("name"),
            vmid=row.get("vmid"),
            pool=row.get("pool"),
            tags=_split(row.get("tags")),
            template=bool(row.get("template", 0)),
            content=_split(row.get("content")),
            attrs={k: v for k, v in row.items() if k not in _FIELDS | _COUNTERS},
        )
    return out
