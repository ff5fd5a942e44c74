"""Two snapshots of one cluster → the events that happened between them.

Pure: `now` is the detection time and the only time used. The first snapshot is the
baseline and yields nothing. Events come in a deterministic order: by resource id, then
for one guest node before status before the other fields (`_GUEST_FIELDS` order).
Call `diff(old, carry_forward(old, new), ...)`: a guest's `unknown` status is "no
information" and never an event here, even without `carry_forward`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pvewatch.model import (
    EVENT_TYPES,
    Change,
    Event,
    JSONValue,
    Resource,
    ResourceRef,
    Severity,
    Snapshot,
    event_id,
    same_resources,
)
from pvewatch.watch.normalize import GUEST_TYPES

_EXISTENCE_NOUN = {
    "qemu": "guest",
    "lxc": "guest",
    "node": "node",
    "storage": "storage",
    "pool": "pool",
    "sdn": "sdn",
    "network": "network",
}
_NO_INFO = frozenset({None, "unknown"})
_GUEST_CRITICAL = frozenset({"io-error", "internal-error", "guest-panicked"})
_ZONE_TROUBLE = frozenset({"error", "not ok", "pending"})


@dataclass(frozen=True, slots=True)
class _Emit:
    """Builds the events of one diff: everything but the transition itself is shared."""

    cluster: str
    now: datetime
    late: bool

    def __call__(
        self,
        resource: Resource,
        type_: str,
        change: Change | None,
        summary: str,
        severity: Severity | None = None,
    ) -> Event:
        return Event(
            id=event_id(self.cluster, type_, resource.id, change, self.now),
            type=type_,
            time=self.now,
            cluster=self.cluster,
            severity=severity or EVENT_TYPES[type_].severity,
            summary=summary,
            resource=ResourceRef.of(resource),
            change=change,
            cause=None,
            detected_late=self.late,
        )


def diff(old: Snapshot | None, new: Snapshot, now: datetime, *, late: bool = False) -> list[Event]:
    if old is None or same_resources(old.resources, new.resources):
        return []  # nothing, or nothing but the same objects: no change
    emit = _Emit(new.cluster, now, late)
    before, after = old.resources, new.resources
    found: list[tuple[str, list[Event]]] = []
    for rid, resource in after.items():
        previous = before.get(rid)
        if previous is resource:
            continue  # the same object: unchanged (Normalizer reuses unchanged resources)
        if previous is None:
            found.append((rid, [_existence(emit, resource, "added")]))
        elif previous != resource:
            events = _changes(emit, previous, resource)
            if events:
                found.append((rid, events))
    for rid in before.keys() - after.keys():
        found.append((rid, [_existence(emit, before[rid], "removed")]))
    found.sort(key=lambda item: item[0])
    return [event for _, events in found for event in events]


def _existence(emit: _Emit, r: Resource, verb: str) -> Event:
    noun = _EXISTENCE_NOUN.get(r.type, "resource")
    return emit(r, f"{noun}.{verb}", None, f"{_label(r)}{_on_node(r)} {verb}")


def _changes(emit: _Emit, o: Resource, n: Resource) -> list[Event]:
    if n.type in GUEST_TYPES:
        return _guest_changes(emit, o, n)
    if o.status == n.status:
        return []
    change = Change("status", o.status, n.status)
    type_, severity, summary = _status_transition(n, o.status, n.status)
    return [emit(n, type_, change, summary, severity)]


def _status_transition(
    n: Resource, old: str | None, new: str | None
) -> tuple[str, Severity | None, str]:
    label = _label(n)
    if n.type == "node":
        if new == "online":
            return "node.online", None, f"{label} came online"
        if new == "offline":
            return "node.offline", None, f"{label} went offline"
        return "node.status_changed", None, f"{label} {_status_moved(old, new)}"
    if n.type == "storage":
        if new == "available":
            return "storage.available", None, f"{label} became available"
        return "storage.unavailable", None, f"{label} became unavailable"
    if n.type in ("sdn", "network"):
        severity = Severity.WARNING if new in _ZONE_TROUBLE else Severity.INFO
        return f"{n.type}.status_changed", severity, f"{label} {_status_moved(old, new)}"
    return "resource.status_changed", None, f"{label} {_status_moved(old, new)}"


def _guest_changes(emit: _Emit, o: Resource, n: Resource) -> list[Event]:
    events: list[Event] = []
    if o.node != n.node:
        summary = f"{_label(n)} migrated from {_text(o.node)} to {_text(n.node)}"
        events.append(emit(n, "guest.migrated", Change("node", o.node, n.node), summary))
    status = _guest_status(o.status, n.status)
    if status is not None:
        type_, severity, what = status
        summary = f"{_label(n)}{_on_node(n)} {what}"
        events.append(emit(n, type_, Change("status", o.status, n.status), summary, severity))
    for field, type_, summarize in _GUEST_FIELDS:
        was, now = getattr(o, field), getattr(n, field)
        if was != now and not _metrics_field_missing(field, o, n):
            change = Change(field, _json(was), _json(now))
            events.append(emit(n, type_, change, summarize(o, n)))
    return events


def _metrics_field_missing(field: str, o: Resource, n: Resource) -> bool:
    """Name and template come with the metrics: a row without them (status `unknown`)
    does not know them, so their arrival or absence is no change."""
    if field == "name":
        return o.name is None or n.name is None
    if field == "template":
        return o.status in _NO_INFO or n.status in _NO_INFO
    return False


def _guest_status(old: str | None, new: str | None) -> tuple[str, Severity | None, str] | None:
    """The event of a guest's status change, or None when it says nothing: a change to
    "no information", or a brand-new guest's first real status being the default one."""
    if old == new or new in _NO_INFO:
        return None
    from_no_info = old in _NO_INFO
    if new == "running":
        if from_no_info or old == "stopped":
            return "guest.started", None, "started"
        # Any other status is a QEMU run state (qemu qapi/run-state.json, FACTS.md §2.5):
        # paused, suspended, io-error, internal-error, guest-panicked, watchdog, prelaunch,
        # shutdown, inmigrate, postmigrate, finish-migrate, save-vm, restore-vm, debug,
        # colo. In each the vCPUs stop but the QEMU process lives on (PVE shows a VM
        # without one as stopped), so leaving it for running is a resume, not a start.
        what = "resumed" if old in ("paused", "suspended") else f"resumed from {old}"
        return "guest.resumed", None, what
    if new == "stopped":
        return None if from_no_info else ("guest.stopped", None, "stopped")
    if new == "paused" and not from_no_info:
        return "guest.paused", None, "paused"
    severity = Severity.CRITICAL if new in _GUEST_CRITICAL else None
    return "guest.status_changed", severity, _status_moved(old, new)


def _renamed(o: Resource, n: Resource) -> str:
    return f"{_label(n)} renamed from {_text(o.name)} to {_text(n.name)}"


def _tags_changed(o: Resource, n: Resource) -> str:
    added = [t for t in n.tags if t not in o.tags]
    removed = [t for t in o.tags if t not in n.tags]
    parts = [f"added {', '.join(added)}"] if added else []
    parts += [f"removed {', '.join(removed)}"] if removed else []
    return f"{_label(n)} tags changed: {'; '.join(parts)}"


def _lock_changed(o: Resource, n: Resource) -> str:
    if o.lock is None:
        return f"{_label(n)} lock set: {n.lock}"
    if n.lock is None:
        return f"{_label(n)} lock cleared (was {o.lock})"
    return f"{_label(n)} lock changed from {o.lock} to {n.lock}"


def _ha_state_changed(o: Resource, n: Resource) -> str:
    return f"{_label(n)} HA state changed from {_text(o.hastate)} to {_text(n.hastate)}"


def _template_changed(o: Resource, n: Resource) -> str:
    # Named as it was before: "VM 100 (x) became a template" reads better than "template 100".
    if n.template:
        return f"{_label(o)} became a template"
    return f"{_label(o)} is no longer a template"


def _pool_changed(o: Resource, n: Resource) -> str:
    if o.pool is None:
        return f"{_label(n)} joined pool {n.pool}"
    if n.pool is None:
        return f"{_label(n)} left pool {o.pool}"
    return f"{_label(n)} moved from pool {o.pool} to pool {n.pool}"


# The watched guest fields after node and status, in the order their events are emitted.
_GUEST_FIELDS: tuple[tuple[str, str, Callable[[Resource, Resource], str]], ...] = (
    ("name", "guest.renamed", _renamed),
    ("tags", "guest.tags_changed", _tags_changed),
    ("lock", "guest.lock_changed", _lock_changed),
    ("hastate", "guest.ha_state_changed", _ha_state_changed),
    ("template", "guest.template_changed", _template_changed),
    ("pool", "guest.pool_changed", _pool_changed),
)


def _label(r: Resource) -> str:
    """How a human names the resource: "VM 100 (web1)", "node pve3", "storage local on pve2"."""
    if r.type in GUEST_TYPES:
        noun = "template" if r.template else ("VM" if r.type == "qemu" else "CT")
        ident = f"{noun} {r.vmid if r.vmid is not None else r.id}"
        return f"{ident} ({r.name})" if r.name and not _default_name(r) else ident
    if r.type == "node":
        return f"node {r.node or _last_segment(r.id)}"
    if r.type == "pool":
        return f"pool {r.pool or r.id.removeprefix('/pool/')}"
    if r.type == "storage":
        return f"storage {r.attrs.get('storage') or _last_segment(r.id)}{_at_node(r)}"
    if r.type == "sdn":
        return f"SDN zone {r.attrs.get('sdn') or _last_segment(r.id)}{_at_node(r)}"
    if r.type == "network":
        kind = r.attrs.get("network-type") or "entry"
        return f"network {kind} {r.attrs.get('network') or _last_segment(r.id)}{_at_node(r)}"
    return f"{r.type} {r.id}"


def _default_name(r: Resource) -> bool:
    """The name PVE gives a guest that has none (FACTS.md §2.2): "VM 100", "CT100"; it
    says nothing the label does not already say."""
    return r.name == (f"VM {r.vmid}" if r.type == "qemu" else f"CT{r.vmid}")


def label(r: Resource) -> str:
    """How a human names the resource; the rules' summaries name resources the same way."""
    return _label(r)


def _on_node(r: Resource) -> str:
    """Where a guest is; other labels already say it (see `_at_node`)."""
    return f" on {r.node}" if r.type in GUEST_TYPES and r.node else ""


def _at_node(r: Resource) -> str:
    return f" on {r.node}" if r.node else ""


def _last_segment(rid: str) -> str:
    return rid.rstrip("/").rpartition("/")[2] or rid


def _status_moved(old: str | None, new: str | None) -> str:
    return f"status changed from {old or 'unknown'} to {new or 'unknown'}"


def _text(value: str | None) -> str:
    return value if value is not None else "(none)"


def _json(value: str | bool | tuple[str, ...] | None) -> JSONValue:
    # Tuples (tags) travel as JSON lists; the other watched fields already are JSON.
    return list(value) if isinstance(value, tuple) else value
