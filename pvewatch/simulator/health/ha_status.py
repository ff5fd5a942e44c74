"""What `/cluster/ha/status/current` and `/cluster/ha/status/manager_status` show of the
HA state (pve-ha-manager src/PVE/API2/HA/Status.pm, Tools.pm; FACTS-health.md §1). The
format of each status text is PVE's: `pve1 (active, Sun Oct 27 03:33:16 2024)`, PVE 9's
LRM lines with the watchdog, `vm:100 (pve1, started)`. Times render in UTC.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pvewatch.simulator.health.ha import HaState, Service, find, local_node, stamp

if TYPE_CHECKING:
    from pvewatch.simulator.cluster import SimCluster
    from pvewatch.simulator.entities import Guest


def current(ha: HaState, cluster: SimCluster, now: float) -> list[dict[str, Any]]:
    local, quorate = local_node(cluster), _quorate(cluster)
    rows: list[dict[str, Any]] = [
        {"id": "quorum", "type": "quorum", "node": local}
        | {"status": "OK" if quorate else f"No quorum on node '{local}'!"}
        | {"quorate": int(quorate)}
    ]
    pve9 = cluster.options.pve_version >= 9
    if not ha.used:
        if pve9:
            rows.append(_fencing(local, active=False))
        return rows
    master, at = ha.master(cluster), stamp(now)
    rows.append(
        {"id": "master", "type": "master", "node": master, "timestamp": at}
        | {"status": f"{master} (active, {perl_localtime(at)})"}
    )
    if pve9:
        rows.append(_fencing(master, active=True))
    for name in sorted(cluster.nodes):
        rows.append(_lrm_row(ha, cluster, name, now, pve9))
    for sid in sorted(ha.services):
        row = _service_row(ha, cluster, sid, pve9)
        if row is not None:
            rows.append(row)
    return rows


def manager_status(ha: HaState, cluster: SimCluster, now: float) -> dict[str, Any]:
    local = local_node(cluster)
    data: dict[str, Any] = {
        "manager_status": {},
        "quorum": {"node": local, "quorate": str(int(_quorate(cluster)))},
    }
    if not ha.used:
        return data
    services: dict[str, dict[str, Any]] = {}
    for sid in sorted(ha.services):
        guest = find(cluster, sid)
        if guest is not None and guest.hastate:
            services[sid] = {"node": guest.node, "state": guest.hastate}
            services[sid]["running"] = int(guest.status == "running")
    data["manager_status"] = {
        "master_node": ha.master(cluster),
        "node_status": {n: ha.node_state(cluster, n) for n in sorted(cluster.nodes)},
        "service_status": services,
        "timestamp": stamp(now),
    }
    data["lrm_status"] = {
        n: {"mode": ha.lrm_mode(cluster, n), "results": {}}
        | {"state": ha.lrm_state(cluster, n), "timestamp": ha.lrm_stamp(cluster, n, now)}
        for n in sorted(cluster.nodes)
    }
    return data


def _lrm_row(ha: HaState, cluster: SimCluster, name: str, now: float, pve9: bool) -> dict[str, Any]:
    at, state = ha.lrm_stamp(cluster, name, now), ha.lrm_state(cluster, name)
    mode = ha.lrm_mode(cluster, name)
    fresh = _timestamp_status(now, at)
    if fresh == "active":
        status = f"{mode} mode" if mode != "active" else state
        status = "idle" if status == "wait_for_agent_lock" else status
    else:
        status = f"{mode} mode" if mode == "maintenance" else fresh
    text = f"{name} ({status}, {perl_localtime(at)})"
    if pve9:
        watchdog = "active" if fresh == "active" and state == "active" else "standby"
        text = f"{name} ({status}, watchdog {watchdog}, {perl_localtime(at)})"
    return {"id": f"lrm:{name}", "type": "lrm", "node": name, "status": text} | {"timestamp": at}


def _service_row(ha: HaState, cluster: SimCluster, sid: str, pve9: bool) -> dict[str, Any] | None:
    guest, service = find(cluster, sid), ha.services[sid]
    if guest is None:
        return None
    row: dict[str, Any] = {"id": f"service:{sid}", "type": "service", "sid": sid}
    row["node"] = guest.node
    if guest.hastate:
        row["crm_state"] = guest.hastate
    row["state"] = _verbose_state(guest, service)
    row["status"] = f"{sid} ({guest.node}, {row['state']})"
    row["request_state"] = service.request_state
    row.update(max_restart=service.max_restart, max_relocate=service.max_relocate)
    if pve9:
        row["failback"] = 1
    elif service.group is not None:
        row["group"] = service.group
    if service.comment is not None:
        row["comment"] = service.comment
    return row


def perl_localtime(epoch: float) -> str:
    """Perl's `scalar localtime` (in UTC): `Sun Oct 27 03:33:16 2024`."""
    t = time.gmtime(epoch)
    return time.strftime(f"%a %b {t.tm_mday:2d} %H:%M:%S %Y", t)


def _verbose_state(guest: Guest, service: Service) -> str:
    """Tools.pm `get_verbose_service_state`."""
    req, cur = service.request_state, guest.hastate
    if req == "ignored":
        return "ignored"
    if cur is None:
        return "queued"
    if cur == "stopped":
        return {"started": "starting", "disabled": "disabled"}.get(req, cur)
    if cur == "started":
        if guest.status != "running":
            return "starting"
        return "stopping" if req in ("stopped", "disabled") else cur
    if cur == "error" and req == "disabled":
        return "clearing error flag"
    return cur


def _fencing(node: str, active: bool) -> dict[str, Any]:
    state = "armed" if active else "standby"
    return {"id": "fencing", "type": "fencing", "node": node} | {
        "status": f"{state} (CRM watchdog {'active' if active else 'standby'})",
        "armed-state": state,
    }


def _timestamp_status(now: float, at: int) -> str:
    if now - at > 30:
        return "old timestamp - dead?"
    return "detected time drift!" if now - at < -2 else "active"


def _quorate(cluster: SimCluster) -> bool:
    members = [cluster.node_online(n) for n in cluster.nodes]
    return sum(1 for m in members if m) * 2 > len(members)
