"""A check's reading and what it remembers → events and the new memory. Pure.

    evaluate(cluster, reading, state, ctx) -> (events, new_state)

- The first reading of a check is its baseline: what is bad then is reported at once,
  marked `details.at_start: true` (a replication job failing at install time); what is
  fine is only remembered.
- Later, a condition that turns bad waits its hold (`hold_secs` of its event type; 0: at
  once) and is reported once; a change of its event type or a higher severity while it is
  open is reported again with the same `condition` (`details.previous` = the event before);
  the event that resolves it carries `resolves` = the id of the last one sent. A Ceph
  health check that is no longer listed is cleared.
- What a reading does not cover (a node offline or unreadable, `Reading.unread_*`) is
  unknown: no event, nothing forgotten. A condition whose thing is gone (a job removed, a
  disk pulled) is resolved with `details.gone: true`.
- An HA resource's other state changes are `ha.resource_state_changed` (info).

`state` is JSON (kept by the store): `{"baseline": bool, "open": {condition: {...}},
"pending": {condition: {...}}, "values": {condition: value}}`; a damaged entry is dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pvewatch.model import (
    Change,
    Event,
    ResourceRef,
    Severity,
    event_id,
    format_time,
    parse_time,
)
from pvewatch.watch.checks.findings import (
    ABSENT_IS_GOOD,
    RESOLVED_BY,
    STATE_CHANGED,
    Finding,
    Reading,
    kind_of,
)

_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


@dataclass(frozen=True, slots=True)
class Context:
    now: datetime
    late: bool = False  # the daemon was not watching for a while (restart): detected_late
    hold_secs: Callable[[str], float] = lambda type_: 0.0


def evaluate(
    cluster: str, reading: Reading, state: Mapping[str, Any], ctx: Context
) -> tuple[list[Event], dict[str, Any]]:
    opened = _entries(state.get("open"))
    pending = _entries(state.get("pending"))
    values = {k: v for k, v in _entries(state.get("values")).items() if isinstance(v, str)}
    first = not state.get("baseline")
    events: list[Event] = []
    seen: set[str] = set()
    for f in reading.findings:
        key = f.condition
        seen.add(key)
        was = opened.get(key)
        if f.value is not None:
            old = values.get(key)
            values[key] = f.value
            if old is not None and old != f.value and not (f.bad or was):
                events.append(_state_changed(cluster, f, old, ctx))
        if not f.bad:
            pending.pop(key, None)
            if was is not None:
                events.append(_resolve(cluster, key, was, f.resource, f.summary, ctx, {}))
                del opened[key]
            continue
        if was is not None:
            if was.get("type") != f.type or _RANK[f.severity] > _RANK[_severity(was)]:
                event = _problem(cluster, f, ctx, {"previous": was.get("id")})
                events.append(event)
                opened[key] = _record(event)
            continue
        if first:
            event = _problem(cluster, f, ctx, {"at_start": True})
        else:
            since = _since(pending.get(key), f.type, ctx.now)
            pending[key] = {"since": format_time(since), "type": f.type}
            if ctx.now - since < timedelta(seconds=ctx.hold_secs(f.type)):
                continue
            held = {"since": format_time(since)} if since < ctx.now else {}
            event = _problem(cluster, f, ctx, held)
        pending.pop(key, None)
        events.append(event)
        opened[key] = _record(event)
    for key in list(opened) + list(pending) + list(values):
        if key in seen or not _covered(key, opened.get(key) or pending.get(key), reading):
            continue
        was = opened.pop(key, None)
        pending.pop(key, None)
        values.pop(key, None)
        if was is not None:
            ref = _ref(was.get("resource"), key)
            if kind_of(key) in ABSENT_IS_GOOD:
                summary, extra = f"{ref.name or ref.id} cleared", {}
            else:
                summary, extra = f"{was.get('summary', key)}: gone", {"gone": True}
            events.append(_resolve(cluster, key, was, ref, summary, ctx, extra))
    new_state = {"baseline": True, "open": opened, "pending": pending, "values": values}
    return events, new_state


def _entries(raw: object) -> dict[str, Any]:
    if not isinstance(raw, dict):
        return {}
    return {k: v for k, v in raw.items() if isinstance(k, str) and (isinstance(v, (dict, str)))}


def _severity(record: Mapping[str, Any]) -> Severity:
    try:
        return Severity(str(record.get("severity")))
    except ValueError:
        return Severity.WARNING


def _since(entry: object, type_: str, now: datetime) -> datetime:
    """When a pending condition started (now when new, damaged or of another type)."""
    if not isinstance(entry, dict) or entry.get("type") != type_:
        return now
    try:
        return parse_time(str(entry["since"]))
    except (KeyError, ValueError):
        return now


def _covered(key: str, record: object, reading: Reading) -> bool:
    """Whether this reading would have found `key`: not when its node or kind was unread."""
    if kind_of(key) in reading.unread_kinds:
        return False
    node = None
    if isinstance(record, dict) and isinstance(record.get("resource"), dict):
        node = record["resource"].get("node")
    if node is None:
        # A value-only entry (HA state) or a pending one: the node is the id's second part.
        parts = key.partition(":")[2].split("/")
        node = parts[1] if len(parts) > 2 else None
    return node not in reading.unread_nodes


def _record(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type,
        "severity": event.severity.value,
        "time": format_time(event.time),
        "summary": event.summary,
        "resource": event.resource.to_dict() if event.resource else None,
    }


def _ref(raw: object, key: str) -> ResourceRef:
    if isinstance(raw, dict) and isinstance(raw.get("id"), str):
        node = raw.get("node")
        name = raw.get("name")
        vmid = raw.get("vmid")
        return ResourceRef(
            raw["id"],
            str(raw.get("type") or "check"),
            vmid if isinstance(vmid, int) else None,
            name if isinstance(name, str) else None,
            node if isinstance(node, str) else None,
        )
    return ResourceRef(key.partition(":")[2], "check")


def _problem(cluster: str, f: Finding, ctx: Context, extra: Mapping[str, Any]) -> Event:
    return Event(
        id=event_id(cluster, f.type, f.condition, None, ctx.now),
        type=f.type,
        time=ctx.now,
        cluster=cluster,
        severity=f.severity,
        summary=f.summary,
        resource=f.resource,
        detected_late=ctx.late,
        condition=f.condition,
        details={**f.details, **extra},
    )


def _resolve(
    cluster: str,
    key: str,
    was: Mapping[str, Any],
    ref: ResourceRef,
    summary: str,
    ctx: Context,
    extra: Mapping[str, Any],
) -> Event:
    type_ = RESOLVED_BY[kind_of(key)]
    return Event(
        id=event_id(cluster, type_, key, None, ctx.now),
        type=type_,
        time=ctx.now,
        cluster=cluster,
        severity=Severity.INFO,
        summary=summary,
        resource=ref,
        detected_late=ctx.late,
        condition=key,
        resolves=str(was.get("id")),
        details={"since": was.get("time"), **extra},
    )


def _state_changed(cluster: str, f: Finding, old: str, ctx: Context) -> Event:
    change = Change("state", old, f.value)
    return Event(
        id=event_id(cluster, STATE_CHANGED, f.resource.id, change, ctx.now),
        type=STATE_CHANGED,
        time=ctx.now,
        cluster=cluster,
        severity=Severity.INFO,
        summary=f"HA resource {f.resource.name or f.resource.id}: {old} → {f.value}",
        resource=f.resource,
        change=change,
        detected_late=ctx.late,
    )
