"""Ceph: `/cluster/ceph/status` and `/nodes/{node}/ceph/status` (pve-manager
PVE/API2/Cluster/Ceph.pm and PVE/Ceph/Tools.pm `ceph_cluster_status`; FACTS-health.md §2).

Not installed by default: both answer 500 `binary not installed: /usr/bin/ceph-mon`.
`PUT /_sim/ceph` installs and initializes it (or sets `state` to one of the not-set-up
answers) and sets the health: the overall status follows the worst unmuted check unless
given, muted checks are listed under `mutes`, and `osdmap` counts `OSD_DOWN`'s OSDs down.
The answer has the keys and types of a real Reef/Squid status (the captured answers).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pvewatch.simulator.edits import ControlError
from pvewatch.simulator.health import fields

if TYPE_CHECKING:
    from pvewatch.simulator.cluster import SimCluster

STATES = ("ok", "not_installed", "not_initialized")
HEALTH = ("HEALTH_OK", "HEALTH_WARN", "HEALTH_ERR")
ERRORS = {
    "not_installed": "binary not installed: /usr/bin/ceph-mon\n",
    "not_initialized": "pveceph configuration not initialized - missing "
    "'/etc/pve/ceph.conf', missing '/etc/pve/ceph'\n",
}
FSID = "d11c6ea1-7ab2-41fa-99c5-b85f4d7ffd49"
_CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_OSDS_PER_MON = 2


class CephState:
    def __init__(self) -> None:
        self.state = "not_installed"
        self.health: str | None = None  # None: follows the checks
        self.checks: dict[str, dict[str, Any]] = {}

    def put(self, body: Any) -> None:
        where = "/_sim/ceph"
        spec = fields.body_object(body, where, ("state", "health", "checks"))
        state = fields.choice(spec.get("state", "ok"), where, "state", STATES)
        health = spec.get("health", self.health if "checks" not in spec else None)
        if health is not None:
            health = fields.choice(health, where, "health", HEALTH)
        checks = self.checks
        if "checks" in spec:
            if not isinstance(spec["checks"], dict):
                raise ControlError(f"{where}: 'checks' must be an object of CODE -> check")
            checks = {code: _check(code, c) for code, c in spec["checks"].items()}
        self.state, self.health, self.checks = state, health, checks

    def reset(self) -> None:
        self.state, self.health, self.checks = "not_installed", None, {}

    def error(self) -> str | None:
        """The 500 message while Ceph is not set up."""
        return ERRORS.get(self.state)

    def status(self, cluster: SimCluster, now: float) -> dict[str, Any]:
        mons = list(cluster.nodes.values())[:3]
        up = [i for i, n in enumerate(mons) if cluster.node_online(n.name)]
        osds = _OSDS_PER_MON * len(mons)
        down = int(self.checks.get("OSD_DOWN", {}).get("summary", {}).get("count", 0))
        return {
            "fsid": FSID,
            "health": self._health(),
            "election_epoch": 42,
            "quorum": up,
            "quorum_names": [mons[i].name for i in up],
            "quorum_age": 3600,
            "monmap": {
                "epoch": 3,
                "fsid": FSID,
                "modified": "2026-01-10T10:00:00.000000Z",
                "created": "2026-01-10T09:00:00.000000Z",
                "min_mon_release": 19,
                "min_mon_release_name": "squid",
                "election_strategy": 1,
                "disallowed_leaders: ": "",
                "stretch_mode": False,
                "tiebreaker_mon": "",
                "removed_ranks: ": "",
                "features": {"persistent": ["quincy", "reef", "squid"], "optional": []},
                "mons": [_mon(i, n.name, n.ip) for i, n in enumerate(mons)],
                "quorum": up,
            },
            "osdmap": {
                "epoch": 812,
                "num_osds": osds,
                "num_up_osds": max(0, osds - down),
                "osd_up_since": int(now) - 86_400,
                "num_in_osds": osds,
                "osd_in_since": int(now) - 864_000,
                "num_remapped_pgs": 0,
            },
            "pgmap": {
                "pgs_by_state": [{"state_name": "active+clean", "count": 128}],
                "num_pgs": 128,
                "num_pools": 2,
                "num_objects": 32921,
                "data_bytes": 130_000_000_000,
                "bytes_used": 400_000_000_000,
                "bytes_avail": 5_600_000_000_000,
                "bytes_total": 6_000_000_000_000,
                "read_bytes_sec": 1024,
                "write_bytes_sec": 204800,
                "read_op_per_sec": 1,
                "write_op_per_sec": 20,
            },
            "fsmap": {"epoch": 1, "by_rank": [], "up:standby": 0},
            "mgrmap": {
                "available": True,
                "active_name": mons[0].name if mons else "",
                "active_gid": 14120,
                "active_addr": f"{mons[0].ip if mons else '0.0.0.0'}:6801/1234",
                "standbys": [
                    {"gid": 14200 + i, "name": n.name, "mgr_features": 4540701547738038271}
                    for i, n in enumerate(mons[1:])
                ],
                "modules": ["iostat", "restful"],
                "services": {},
                "epoch": 20,
            },
            "servicemap": {"epoch": 5, "modified": "2026-01-10T10:00:00.000000+0000"}
            | {"services": {}},
            "progress_events": {},
        }

    def _health(self) -> dict[str, Any]:
        unmuted = [c["severity"] for c in self.checks.values() if not c["muted"]]
        status = self.health or (
            "HEALTH_ERR" if "HEALTH_ERR" in unmuted else "HEALTH_WARN" if unmuted else "HEALTH_OK"
        )
        mutes = [
            {"code": code, "sticky": False}
            | {"summary": c["summary"]["message"], "count": c["summary"]["count"]}
            for code, c in self.checks.items()
            if c["muted"]
        ]
        return {"status": status, "checks": self.checks, "mutes": mutes}


def _check(code: Any, spec: Any) -> dict[str, Any]:
    where = f"/_sim/ceph: check {code}"
    if not isinstance(code, str) or not _CODE.match(code):
        raise ControlError(f"/_sim/ceph: {code!r} is not a health check code (e.g. OSD_DOWN)")
    spec = fields.body_object(spec, where, ("severity", "message", "count", "detail", "muted"))
    severity = fields.choice(spec.get("severity"), where, "severity", HEALTH[1:])
    message = fields.text(spec.get("message"), where, "message")
    detail = fields.strings(spec.get("detail", []), where, "detail")
    return {
        "severity": severity,
        "summary": {
            "message": message,
            "count": fields.integer(spec.get("count", max(1, len(detail))), where, "count"),
        },
        "detail": [{"message": d} for d in detail],
        "muted": bool(fields.flag(spec.get("muted", False), where, "muted")),
    }


def _mon(rank: int, name: str, ip: str) -> dict[str, Any]:
    return {
        "rank": rank,
        "name": name,
        "public_addrs": {
            "addrvec": [
                {"type": "v2", "addr": f"{ip}:3300", "nonce": 0},
                {"type": "v1", "addr": f"{ip}:6789", "nonce": 0},
            ]
        },
        "addr": f"{ip}:6789/0",
        "public_addr": f"{ip}:6789/0",
        "priority": 0,
        "weight": 0,
        "crush_location": "{}",
    }
