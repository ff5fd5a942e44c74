"""The data that flows through pvewatch: resources, snapshots, events. Frozen, no I/O.

A `Resource` is one row of `/cluster/resources` reduced to what can change meaningfully
(counters and gauges are dropped by `watch.normalize`). A `Snapshot` is every resource of
one cluster at one poll, keyed by the PVE id (`qemu/100`, `node/pve1`, `/pool/prod`): the
node is an attribute, so a migration changes a field instead of the identity.

An `Event` is one transition, in the native shape of DESIGN.md; `to_dict()` gives the
JSON object that sinks send and `Event.from_dict()` reads it back.

Over 350 lines: the catalogue of event types (EVENT_TYPES) sits beside the Event it
describes, so a new event type is one edit in one file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from operator import is_
from typing import Any, NamedTuple

JSONValue = str | int | float | bool | None | list[Any] | dict[str, Any]


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Resource:
    """One watched entry of `/cluster/resources`, normalized (see `watch.normalize`)."""

    id: str
    type: str
    status: str | None = None
    node: str | None = None
    name: str | None = None
    vmid: int | None = None
    pool: str | None = None
    tags: tuple[str, ...] = ()
    lock: str | None = None
    hastate: str | None = None
    template: bool = False
    content: tuple[str, ...] = ()
    # Other stable fields (plugintype, shared, level, zone-type, ...), passed through as
    # labels; unknown fields of unknown types land here too.
    attrs: Mapping[str, JSONValue] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "status": self.status,
            "node": self.node,
            "name": self.name,
            "vmid": self.vmid,
            "pool": self.pool,
            "tags": list(self.tags),
            "lock": self.lock,
            "hastate": self.hastate,
            "template": self.template,
            "content": list(self.content),
            "attrs": dict(self.attrs),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Resource:
        return cls(
            id=d["id"],
            type=d["type"],
            status=d.get("status"),
            node=d.get("node"),
            name=d.get("name"),
            vmid=d.get("vmid"),
            pool=d.get("pool"),
            tags=tuple(d.get("tags") or ()),
            lock=d.get("lock"),
            hastate=d.get("hastate"),
            template=bool(d.get("template", False)),
            content=tuple(d.get("content") or ()),
            attrs=dict(d.get("attrs") or {}),
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every watched resource of one cluster at one successful poll."""

    cluster: str
    resources: Mapping[str, Resource]
    taken_at: datetime
    # From /cluster/status: None when unknown (no Sys.Audit on /, or pvedaemon down).
    quorate: bool | None = None


def same_resources(a: Mapping[str, Resource], b: Mapping[str, Resource]) -> bool:
    """Whether `b` holds the very objects `a` holds, under the same ids (in any order):
    so after a quiet poll, since `Normalizer` reuses the resource of an unchanged row. A
    loop in C, three or four times cheaper than one in Python over 10,000 resources; False
    says nothing (equal resources need not be the same objects)."""
    return a is b or (len(a) == len(b) and all(map(is_, map(a.get, b), b.values())))


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """How polling a cluster has been going, kept in the store across restarts so that an
    outage yields one `source.unreachable` and one `source.recovered`, not one per restart."""

    consecutive_failures: int = 0
    unreachable: bool = False  # source.unreachable was emitted and not yet recovered
    last_error: str | None = None  # the error class ("unreachable", "auth", ...), no secret


@dataclass(frozen=True, slots=True)
class ResourceRef:
    """The identity and labels of the resource an event is about, as of the event."""

    id: str
    type: str
    vmid: int | None = None
    name: str | None = None
    node: str | None = None
    pool: str | None = None
    tags: tuple[str, ...] = ()

    @classmethod
    def of(cls, r: Resource) -> ResourceRef:
        return cls(r.id, r.type, r.vmid, r.name, r.node, r.pool, r.tags)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "vmid": self.vmid,
            "name": self.name,
            "node": self.node,
            "pool": self.pool,
            "tags": list(self.tags),
        }


@dataclass(frozen=True, slots=True)
class Change:
    field: str
    old: JSONValue
    new: JSONValue


@dataclass(frozen=True, slots=True)
class Cause:
    """Who or what made a change: kind is user, backup, migration, ha, replication,
    unplanned or unknown; task is the UPID that explains it."""

    kind: str
    task: str | None = None
    user: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    type: str
    time: datetime
    cluster: str
    severity: Severity
    summary: str
    resource: ResourceRef | None = None
    change: Change | None = None
    cause: Cause | None = None
    detected_late: bool = False
    # A problem event names the condition it starts (e.g. "node.offline:node/pve3"); the
    # event that ends it carries `resolves` = the id of the firing event.
    condition: str | None = None
    resolves: str | None = None
    # Recorded but sent to no sink, and why: "held", "inhibited", "flapping", "silenced",
    # "maintenance", ... (None: sent as routed).
    suppressed: str | None = None
    # Extra, type-specific details (e.g. the error class of source.unreachable).
    details: Mapping[str, JSONValue] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "time": format_time(self.time),
            "cluster": self.cluster,
            "severity": self.severity.value,
            "resource": self.resource.to_dict() if self.resource else None,
            "change": (
                {"field": self.change.field, "old": self.change.old, "new": self.change.new}
                if self.change
                else None
            ),
            "cause": (
                {"kind": self.cause.kind, "task": self.cause.task, "user": self.cause.user}
                if self.cause
                else None
            ),
            "summary": self.summary,
            "detected_late": self.detected_late,
            "condition": self.condition,
            "resolves": self.resolves,
        }
        if self.suppressed:
            d["suppressed"] = self.suppressed
        if self.details:
            d["details"] = dict(self.details)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Event:
        res = d.get("resource")
        chg = d.get("change")
        cause = d.get("cause")
        return cls(
            id=d["id"],
            type=d["type"],
            time=parse_time(d["time"]),
            cluster=d["cluster"],
            severity=Severity(d["severity"]),
            summary=d["summary"],
            resource=(
                ResourceRef(
                    id=res["id"],
                    type=res["type"],
                    vmid=res.get("vmid"),
                    name=res.get("name"),
                    node=res.get("node"),
                    pool=res.get("pool"),
                    tags=tuple(res.get("tags") or ()),
                )
                if res
                else None
            ),
            change=Change(chg["field"], chg["old"], chg["new"]) if chg else None,
            cause=Cause(cause["kind"], cause.get("task"), cause.get("user")) if cause else None,
            detected_late=bool(d.get("detected_late", False)),
            condition=d.get("condition"),
            resolves=d.get("resolves"),
            suppressed=d.get("suppressed"),
            details=dict(d.get("details") or {}),
        )


def format_time(t: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, millisecond precision only when there is any."""
    t = t.astimezone(UTC).replace(tzinfo=None)
    # isoformat, not strftime: %Y does not pad years below 1000 to the 4 digits RFC 3339
    # requires (999-01-01 instead of 0999-01-01).
    return t.isoformat(timespec="milliseconds" if t.microsecond else "seconds") + "Z"


def parse_time(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(UTC)


def event_id(cluster: str, type_: str, subject: str, change: Change | None, time: datetime) -> str:
    """A deterministic id per transition: the same transition detected at the same poll
    always gets the same id, so retries and restarts reuse it (the idempotency key)."""
    material = json.dumps(
        [
            cluster,
            type_,
            subject,
            [change.field, change.old, change.new] if change else None,
            format_time(time),
        ],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return "evt_" + hashlib.sha256(material.encode()).hexdigest()[:26]


class EventType(NamedTuple):
    name: str
    severity: Severity
    description: str


_I, _W, _C = Severity.INFO, Severity.WARNING, Severity.CRITICAL

# The public catalogue of event types (the README's reference table is generated from it).
EVENT_TYPES: Mapping[str, EventType] = {
    t.name: t
    for t in (
        EventType("guest.added", _I, "A VM or container appeared."),
        EventType("guest.removed", _W, "A VM or container disappeared."),
        EventType("guest.started", _I, "A guest went from stopped (or not yet known) to running."),
        EventType("guest.stopped", _W, "A running guest stopped."),
        EventType("guest.paused", _W, "A VM was paused."),
        EventType(
            "guest.resumed",
            _I,
            "A VM runs again after a paused QEMU run state (paused, suspended, io-error, "
            "prelaunch, ...): same QEMU process; ends the problem the bad state started.",
        ),
        EventType(
            "guest.status_changed",
            _W,
            "Any other QEMU run state (suspended, prelaunch, ...); io-error, internal-error "
            "and guest-panicked are critical.",
        ),
        EventType("guest.migrated", _I, "A guest moved to another node."),
        EventType("guest.renamed", _I, "A guest's name changed."),
        EventType("guest.tags_changed", _I, "A guest's tags changed."),
        EventType("guest.lock_changed", _I, "A lock was set or cleared (backup, migrate, ...)."),
        EventType("guest.ha_state_changed", _I, "The HA state of a guest changed."),
        EventType("guest.template_changed", _I, "A guest became a template, or stopped being one."),
        EventType("guest.pool_changed", _I, "A guest joined, left or changed its pool."),
        EventType("node.added", _I, "A node appeared."),
        EventType("node.removed", _W, "A node disappeared."),
        EventType("node.online", _I, "A node came back online."),
        EventType("node.offline", _C, "A node went offline."),
        EventType("node.status_changed", _W, "A node's status changed otherwise (unknown)."),
        EventType("storage.added", _I, "A storage appeared on a node."),
        EventType("storage.removed", _W, "A storage disappeared from a node."),
        EventType("storage.available", _I, "A storage became available."),
        EventType("storage.unavailable", _W, "A storage is no longer available."),
        EventType("pool.added", _I, "A pool appeared."),
        EventType("pool.removed", _I, "A pool disappeared."),
        EventType("sdn.added", _I, "An SDN zone appeared on a node (PVE 8)."),
        EventType("sdn.removed", _I, "An SDN zone disappeared from a node (PVE 8)."),
        EventType("sdn.status_changed", _W, "An SDN zone's status changed (PVE 8)."),
        EventType("network.added", _I, "An SDN zone or fabric appeared on a node (PVE 9)."),
        EventType("network.removed", _I, "An SDN zone or fabric disappeared (PVE 9)."),
        EventType("network.status_changed", _W, "An SDN zone's or fabric's status changed."),
        EventType("resource.added", _I, "An entry of a type pvewatch does not know appeared."),
        EventType("resource.removed", _I, "An entry of a type pvewatch does not know went."),
        EventType("resource.status_changed", _I, "An entry of an unknown type changed status."),
        EventType("source.unreachable", _C, "pvewatch cannot poll the cluster (after debounce)."),
        EventType("source.recovered", _I, "pvewatch can poll the cluster again."),
        EventType(
            "sink.disabled",
            _C,
            "A sink's receiver answered 410 Gone: nothing goes to it until pvewatch restarts "
            "or reloads (its events stay queued). Sent to the other sinks; `cluster` is empty.",
        ),
        EventType("task.failed", _W, "A PVE task (a backup, a migration, ...) failed."),
        EventType("task.warnings", _I, "A PVE task finished with warnings (WARNINGS: n)."),
        EventType("cluster.quorum_lost", _C, "The cluster lost quorum (/cluster/status)."),
        EventType("cluster.quorum_regained", _I, "The cluster is quorate again."),
        EventType("guest.threshold_exceeded", _W, "A guest's cpu, memory or disk usage is high."),
        EventType("guest.threshold_cleared", _I, "A guest's usage is back below its threshold."),
        EventType("node.threshold_exceeded", _W, "A node's cpu, memory or disk usage is high."),
        EventType("node.threshold_cleared", _I, "A node's usage is back below its threshold."),
        EventType("storage.threshold_exceeded", _W, "A storage is filling up."),
        EventType("storage.threshold_cleared", _I, "Storage usage is back below its threshold."),
        EventType("guest.flapping", _W, "A guest changed status too often; quiet until stable."),
        EventType(
            "guest.flapping_ended",
            _I,
            "A flapping guest is stable again (warning if it settled stopped).",
        ),
        EventType("node.flapping", _W, "A node changed status too often; quiet until stable."),
        EventType(
            "node.flapping_ended", _I, "A flapping node is stable again (warning if offline)."
        ),
        EventType("storage.flapping", _W, "A storage changed status too often."),
        # The health checks beside the poll (pvewatch.checking, pvewatch.watch.checks).
        EventType("ha.resource_error", _C, "An HA resource entered `error` or `fence`."),
        EventType("ha.resource_recovered", _I, "An HA resource left `error` / `fence`."),
        EventType("ha.resource_state_changed", _I, "Any other HA state change of a resource."),
        EventType("ha.node_fenced", _C, "The HA manager fences a node."),
        EventType("ha.node_recovered", _I, "A fenced node is back in HA (online, ...)."),
        EventType("ceph.health_warn", _W, "Ceph's overall health is HEALTH_WARN."),
        EventType("ceph.health_err", _C, "Ceph's overall health is HEALTH_ERR."),
        EventType("ceph.health_ok", _I, "Ceph's overall health is HEALTH_OK again."),
        EventType(
            "ceph.check_raised",
            _W,
            "A Ceph health check appeared (`details.code`, `details.message`); critical for "
            "HEALTH_ERR checks, info when muted.",
        ),
        EventType("ceph.check_cleared", _I, "A Ceph health check is gone."),
        EventType(
            "replication.failed",
            _W,
            "A replication job fails (`fail_count` > 0 or `error`); critical from "
            "`fail_count` 3. resource.id `replication/<job id>`; `cause` is the failed replication "
            "task, when listed; the check and PVE's notification are one condition.",
        ),
        EventType("replication.recovered", _I, "A failing replication job synced again."),
        EventType("qdevice.disconnected", _C, "The QDevice is no longer connected."),
        EventType("qdevice.connected", _I, "The QDevice is connected again."),
        EventType(
            "certificate.expiring",
            _W,
            "A node certificate expires within `warn_days`; critical within `critical_days`.",
        ),
        EventType("certificate.renewed", _I, "An expiring certificate was renewed."),
        EventType("disk.failed", _C, "A disk's SMART health is not PASSED / OK."),
        EventType("disk.healthy", _I, "A disk's SMART health is PASSED / OK again."),
        EventType(
            "zfs.degraded",
            _W,
            "A ZFS pool is not ONLINE; critical when FAULTED or UNAVAIL.",
        ),
        EventType("zfs.online", _I, "A ZFS pool is ONLINE again."),
        EventType("backup.not_covered", _W, "A guest is in no backup job."),
        EventType("backup.covered", _I, "A guest is in a backup job again."),
        EventType(
            "backup.stale",
            _W,
            "A guest's newest backup is older than `max_age_hours`; `cause` is the failed vzdump "
            "task since then, when listed.",
        ),
        EventType("backup.fresh", _I, "A guest has a backup within `max_age_hours` again."),
        EventType(
            "storage.flapping_ended",
            _I,
            "A flapping storage is stable again (warning if unavailable).",
        ),
        # Pushed by PVE's and PBS's own notification system (pvewatch.watch.notifications).
        EventType(
            "backup.failed",
            _C,
            "A PVE backup job (vzdump) failed on a node; details list the failed guests.",
        ),
        EventType("backup.succeeded", _I, "A PVE backup job (vzdump) finished on a node."),
        EventType("node.fenced", _C, "PVE's HA manager is fencing a node, or has fenced it."),
        EventType("node.updates_available", _I, "A node has package updates available."),
        EventType("node.system_mail", _W, "Mail to root on a node (smartd, ZFS ZED, cron, ...)."),
        EventType("pbs.job_failed", _W, "A PBS job (gc, prune, sync, verify, tape) failed."),
        EventType("pbs.job_succeeded", _I, "A PBS job (gc, prune, sync, verify, tape) succeeded."),
        EventType(
            "pve.notification",
            _I,
            "Any other PVE notification; its severity follows PVE's (error: critical).",
        ),
        EventType(
            "pbs.notification",
            _I,
            "Any other PBS notification; its severity follows PBS's (error: critical).",
        ),
    )
}
