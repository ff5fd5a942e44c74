"""One check's answers → a `Reading`: a `Finding` for each thing that can be bad. Pure.

A finding's `condition` is its stable identity, `<problem type>:<resource id>` (the
resource ids of the issue: `ha/vm:100`, `ceph/lab`, `ceph/lab/OSD_DOWN`,
`replication/100-0`, `qdevice/lab`, `certificate/pve1/pveproxy-ssl.pem`, `disk/pve1/sda`,
`zfs/pve1/rpool`, `backup/qemu/100`). Ceph's overall health is one condition
(`ceph.health:ceph/lab`) whose event is `ceph.health_warn` or `ceph.health_err`.

An answer of the wrong shape raises `BadAnswer` (the check then reads nothing: no events
from an unreadable answer). Shapes: FACTS-health.md of the shared PVE notes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pvewatch.model import JSONValue, ResourceRef, Severity

_I, _W, _C = Severity.INFO, Severity.WARNING, Severity.CRITICAL
_DIGITS = re.compile(r"-?[0-9]{1,18}")  # ASCII only: int("²") fails, "²".isdigit() is True


class BadAnswer(ValueError):
    """An answer that does not have the shape PVE gives it; the message says where."""


@dataclass(frozen=True, slots=True)
class Finding:
    condition: str  # "<kind>:<resource id>"
    type: str  # the event type while bad (e.g. ceph.health_err); the kind's problem type
    bad: bool
    resource: ResourceRef
    summary: str  # what is wrong (bad) or what is fine again (good)
    severity: Severity = _W
    details: Mapping[str, JSONValue] = field(default_factory=dict)
    # A state whose other changes are events of their own (an HA resource's state).
    value: str | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    findings: list[Finding]
    idle: bool = False  # the feature is not set up: nothing to watch
    # What could not be read this time: its conditions are unknown (no event, kept open).
    unread_nodes: frozenset[str] = frozenset()
    unread_kinds: frozenset[str] = frozenset()


# The event that resolves each kind of condition, and the type of a state change.
RESOLVED_BY: Mapping[str, str] = {
    "ha.resource_error": "ha.resource_recovered",
    "ha.node_fenced": "ha.node_recovered",
    "ceph.health": "ceph.health_ok",
    "ceph.check_raised": "ceph.check_cleared",
    "replication.failed": "replication.recovered",
    "qdevice.disconnected": "qdevice.connected",
    "certificate.expiring": "certificate.renewed",
    "disk.failed": "disk.healthy",
    "zfs.degraded": "zfs.online",
    "backup.not_covered": "backup.covered",
    "backup.stale": "backup.fresh",
}
STATE_CHANGED = "ha.resource_state_changed"
# Every event type the checks make.
CHECK_EVENT_TYPES = frozenset(
    {*RESOLVED_BY.values(), STATE_CHANGED, "ceph.health_warn", "ceph.health_err"}
    | (set(RESOLVED_BY) - {"ceph.health"})
)
# Kinds whose answer lists only what is bad: absent means fine again (not "gone").
ABSENT_IS_GOOD = frozenset({"ceph.check_raised"})


def kind_of(condition: str) -> str:
    return condition.partition(":")[0]


def finding(kind: str, rid: str, rtype: str, bad: bool, summary: str, **extra: Any) -> Finding:
    ref = ResourceRef(
        rid,
        rtype,
        vmid=extra.pop("vmid", None),
        name=extra.pop("name", None),
        node=extra.pop("node", None),
    )
    type_ = extra.pop("type", kind)
    return Finding(f"{kind}:{rid}", type_, bad, ref, summary, **extra)


def rows(answer: object, where: str) -> list[dict[str, Any]]:
    if not isinstance(answer, list) or not all(isinstance(r, dict) for r in answer):
        raise BadAnswer(f"{where}: expected a list of objects")
    return answer


def obj(answer: object, where: str) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise BadAnswer(f"{where}: expected an object")
    return answer


def text(row: Mapping[str, Any], key: str, where: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value:
        raise BadAnswer(f"{where}: no string `{key}`")
    return value


def integer(row: Mapping[str, Any], key: str, where: str, default: int | None = None) -> int:
    value = row.get(key, default)
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadAnswer(f"{where}: `{key}` is not an integer")
    return value


MAX_EPOCH = 253_402_300_799  # 9999-12-31T23:59:59Z: beyond it, no datetime


def epoch(row: Mapping[str, Any], key: str, where: str) -> int:
    """Epoch seconds PVE gives (notafter, ctime, ...), within what a datetime holds."""
    value = integer(row, key, where)
    if not 0 <= value <= MAX_EPOCH:
        raise BadAnswer(f"{where}: `{key}` {value} is not a time")
    return value


def clock(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- HA --------------------------------------------------------------------------------

_HA_BAD = frozenset({"error", "fence"})


def ha(current: object, manager: object) -> Reading:
    """/cluster/ha/status/current (services) and /manager_status (fenced nodes)."""
    findings = []
    for row in rows(current, "/cluster/ha/status/current"):
        if row.get("type") != "service":
            continue
        sid = text(row, "sid", "/cluster/ha/status/current service")
        state = row.get("crm_state") or row.get("state")
        if not isinstance(state, str):
            raise BadAnswer(f"/cluster/ha/status/current {sid}: no state")
        node = row.get("node") if isinstance(row.get("node"), str) else None
        bad = state in _HA_BAD
        summary = (
            f"HA resource {sid} is in {state} on {node}"
            if bad
            else f"HA resource {sid} recovered: {state} on {node}"
        )
        vmid = sid.partition(":")[2]
        findings.append(
            finding(
                "ha.resource_error",
                f"ha/{sid}",
                "ha",
                bad,
                summary,
                node=node,
                name=sid,
                vmid=int(vmid) if _DIGITS.fullmatch(vmid) else None,
                severity=_C,
                value=state,
                details={"state": state, "request_state": row.get("request_state")},
            )
        )
    status = obj(manager, "/cluster/ha/status/manager_status").get("manager_status") or {}
    nodes = obj(status, "manager_status").get("node_status") or {}
    for name, state in sorted(obj(nodes, "manager_status.node_status").items()):
        bad = state == "fence"
        summary = f"HA manager fences node {name}" if bad else f"node {name} is {state} in HA again"
        findings.append(
            finding(
                "ha.node_fenced",
                f"ha/node/{name}",
                "ha",
                bad,
                summary,
                node=name,
                name=name,
                severity=_C,
                details={"state": str(state)},
            )
        )
    return Reading(findings, idle=not findings)


# --- Ceph ------------------------------------------------------------------------------

_CEPH_SEVERITY = {"HEALTH_WARN": _W, "HEALTH_ERR": _C}


def ceph(cluster: str, status: object) -> Reading:
    """/cluster/ceph/status: the overall health and each health check."""
    health = obj(obj(status, "/cluster/ceph/status").get("health"), "/cluster/ceph/status health")
    overall = text(health, "status", "/cluster/ceph/status health")
    checks = health.get("checks") or {}
    rid = f"ceph/{cluster}"
    bad = overall != "HEALTH_OK"
    codes = sorted(obj(checks, "health.checks"))
    summary = f"Ceph is {overall}" + (f": {', '.join(codes)}" if codes else "")
    findings = [
        finding(
            "ceph.health",
            rid,
            "ceph",
            bad,
            summary if bad else "Ceph is HEALTH_OK",
            type="ceph.health_err" if overall == "HEALTH_ERR" else "ceph.health_warn",
            severity=_CEPH_SEVERITY.get(overall, _W),
            details={"status": overall, "checks": codes},
        )
    ]
    for code in codes:
        check = obj(checks[code], f"health.checks.{code}")
        message = (
            (check.get("summary") or {}).get("message")
            if isinstance(check.get("summary"), dict)
            else None
        )
        muted = bool(check.get("muted"))
        severity = _I if muted else _CEPH_SEVERITY.get(str(check.get("severity")), _W)
        said = f"Ceph {code}: {message or code}" + (" (muted)" if muted else "")
        findings.append(
            finding(
                "ceph.check_raised",
                f"{rid}/{code}",
                "ceph",
                True,
                said,
                name=code,
                severity=severity,
                details={
                    "code": code,
                    "message": message,
                    "muted": muted,
                    "severity": str(check.get("severity")),
                },
            )
        )
    return Reading(findings)


# --- replication -----------------------------------------------------------------------


def replication(
    by_node: Mapping[str, object], guests: Mapping[int, str], unread: frozenset[str]
) -> Reading:
    """/nodes/{node}/replication of the nodes read; `guests`: names by vmid."""
    findings = []
    for node, answer in sorted(by_node.items()):
        where = f"/nodes/{node}/replication"
        for row in rows(answer, where):
            job = text(row, "id", where)
            guest = integer(row, "guest", f"{where} {job}")
            fails = integer(row, "fail_count", f"{where} {job}", 0)
            error = row.get("error") if isinstance(row.get("error"), str) else None
            target = row.get("target") if isinstance(row.get("target"), str) else "?"
            kind = "CT" if row.get("vmtype") == "lxc" else "VM"
            name = guests.get(guest)
            what = f"replication job {job} ({kind} {guest}{' ' + name if name else ''} → {target})"
            bad = fails > 0 or error is not None
            last = row.get("last_sync")
            if not (isinstance(last, int) and 0 < last <= MAX_EPOCH):
                last = None
            since = f" since {clock(last)}" if last else ""
            summary = (
                f"{what} failing{since}: {error or f'{fails} failed attempts'}"
                if bad
                else f"{what} synced again"
            )
            findings.append(
                finding(
                    "replication.failed",
                    f"replication/{job}",
                    "replication",
                    bad,
                    summary,
                    node=node,
                    vmid=guest,
                    name=name,
                    severity=_C if fails >= 3 else _W,
                    details={
                        "job": job,
                        "guest": guest,
                        "target": target,
                        "fail_count": fails,
                        "error": error,
                        "last_sync": last,
                    },
                )
            )
    return Reading(findings, idle=not findings and not unread, unread_nodes=unread)


# --- QDevice ---------------------------------------------------------------------------


def qdevice(cluster: str, answer: object) -> Reading:
    """/cluster/config/qdevice: `{}` when there is none."""
    status = obj(answer, "/cluster/config/qdevice")
    if not status:
        return Reading([], idle=True)
    state = text(status, "State", "/cluster/config/qdevice")
    host = status.get("QNetd host")
    bad = state != "Connected"
    summary = f"QDevice {host or ''} is {state}".replace("  ", " ")
    return Reading(
        [
            finding(
                "qdevice.disconnected",
                f"qdevice/{cluster}",
                "qdevice",
                bad,
                summary,
                severity=_C,
                details={"state": state, "host": host if isinstance(host, str) else None},
            )
        ]
    )
