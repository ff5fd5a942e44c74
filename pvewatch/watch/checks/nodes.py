"""The per-node checks' answers → readings: certificates, disks and ZFS pools (see
`findings`). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from pvewatch.model import Severity
from pvewatch.watch.checks.findings import (
    Finding,
    Reading,
    clock,
    epoch,
    finding,
    rows,
    text,
)

_W, _C = Severity.WARNING, Severity.CRITICAL


# --- certificates ----------------------------------------------------------------------


def certificates(
    by_node: Mapping[str, object],
    now: datetime,
    warn_days: float,
    critical_days: float,
    unread: frozenset[str],
) -> Reading:
    """/nodes/{node}/certificates/info; the root CA once (`certificate/pve-root-ca.pem`)."""
    found: dict[str, Finding] = {}
    for node, answer in sorted(by_node.items()):
        where = f"/nodes/{node}/certificates/info"
        for row in rows(answer, where):
            name = text(row, "filename", where)
            notafter = epoch(row, "notafter", f"{where} {name}")
            rid = (
                f"certificate/{name}" if name == "pve-root-ca.pem" else f"certificate/{node}/{name}"
            )
            left = datetime.fromtimestamp(notafter, UTC) - now
            days = left / timedelta(days=1)
            bad = days < warn_days
            expiry = clock(notafter)
            what = (
                f"certificate {name} of {node}"
                if "/" in rid.removeprefix("certificate/")
                else (f"certificate {name}")
            )
            summary = (
                (
                    f"{what} expired on {expiry}"
                    if days < 0
                    else f"{what} expires on {expiry} ({int(days)} days)"
                )
                if bad
                else f"{what} renewed: valid until {expiry}"
            )
            found.setdefault(
                rid,
                finding(
                    "certificate.expiring",
                    rid,
                    "certificate",
                    bad,
                    summary,
                    node=node,
                    name=name,
                    severity=_C if days < critical_days else _W,
                    details={
                        "notafter": notafter,
                        "days_left": round(days, 1),
                        "subject": row.get("subject")
                        if isinstance(row.get("subject"), str)
                        else None,
                    },
                ),
            )
    return Reading(list(found.values()), unread_nodes=unread)


# --- disks and ZFS ---------------------------------------------------------------------

_DISK_OK = frozenset({"PASSED", "OK", "UNKNOWN"})  # UNKNOWN: no SMART data (QEMU, USB)
_POOL_CRITICAL = frozenset({"FAULTED", "UNAVAIL"})


def disks(
    lists: Mapping[str, object], pools: Mapping[str, object | None], unread: frozenset[str]
) -> Reading:
    """/nodes/{node}/disks/list (SMART health) and /disks/zfs (None: ZFS not installed)."""
    findings = []
    for node, answer in sorted(lists.items()):
        where = f"/nodes/{node}/disks/list"
        for row in rows(answer, where):
            dev = text(row, "devpath", where).removeprefix("/dev/")
            health = str(row["health"]) if isinstance(row.get("health"), str) else "UNKNOWN"
            model = row.get("model") if isinstance(row.get("model"), str) else None
            bad = health.strip().upper() not in _DISK_OK
            summary = (
                f"disk /dev/{dev} of {node} ({model or 'unknown model'}): SMART {health}"
                if bad
                else f"disk /dev/{dev} of {node}: SMART {health}"
            )
            findings.append(
                finding(
                    "disk.failed",
                    f"disk/{node}/{dev}",
                    "disk",
                    bad,
                    summary,
                    node=node,
                    name=dev,
                    severity=_C,
                    details={
                        "health": health,
                        "model": model,
                        "serial": row.get("serial") if isinstance(row.get("serial"), str) else None,
                    },
                )
            )
    for node, answer in sorted(pools.items()):
        if answer is None:
            continue
        where = f"/nodes/{node}/disks/zfs"
        for row in rows(answer, where):
            pool = text(row, "name", where)
            health = text(row, "health", f"{where} {pool}")
            bad = health != "ONLINE"
            summary = f"ZFS pool {pool} of {node} is {health}"
            findings.append(
                finding(
                    "zfs.degraded",
                    f"zfs/{node}/{pool}",
                    "zfs",
                    bad,
                    summary,
                    node=node,
                    name=pool,
                    severity=_C if health in _POOL_CRITICAL else _W,
                    details={"health": health},
                )
            )
    return Reading(findings, unread_nodes=unread)
