"""Hold (debounce): a transition must last `for_secs` before it is sent.

A transition of a type with a hold is recorded at once as `suppressed="held"` and kept
pending. If the resource flips back before the hold is over, the flip back is recorded as
held too and neither is sent. If it lasts, the first poll after the hold sends it again,
with its own id (derived from the held record's) and the time it was first seen.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from pvewatch.model import Event, JSONValue, Snapshot
from pvewatch.watch.shape.common import (
    HELD,
    OWN_REASONS,
    derived_id,
    field_value,
    iso,
    load_time,
    suppress,
)


@dataclass(frozen=True, slots=True)
class Pending:
    event: Event  # the held transition, as first seen
    rid: str
    field: str
    new: JSONValue  # the value it changed to
    origin: JSONValue  # the value before it (before the first of a chain of held ones)
    due: datetime

    def dump(self) -> dict[str, Any]:
        return {"event": self.event.to_dict(), "origin": self.origin, "due": iso(self.due)}

    @classmethod
    def load(cls, raw: Any) -> Pending | None:
        due = load_time(raw["due"])
        event = Event.from_dict(raw["event"])
        if due is None:
            return None
        return cls.of(event, raw.get("origin"), due)

    @classmethod
    def of(cls, event: Event, origin: JSONValue, due: datetime) -> Pending | None:
        if event.resource is None or event.change is None:
            return None
        return cls(event, event.resource.id, event.change.field, event.change.new, origin, due)


def hold_key(event: Event) -> str | None:
    if event.resource is None or event.change is None:
        return None
    return f"{event.resource.id}|{event.change.field}"


def hold(
    events: list[Event],
    new: Snapshot,
    hold_secs: Mapping[str, float],
    pending: Mapping[str, Pending],
    now: datetime,
    *,
    observed: bool,
    deferred: Callable[[Event], bool],
    dropped: frozenset[str],
) -> tuple[list[Event], list[Event], dict[str, Pending]]:
    """The events (new holds marked), the held transitions that lasted, the pending holds.

    `observed`: this poll saw the cluster (a failed or late poll confirms nothing new and
    holds nothing: a late transition has lasted an unknown while already). `deferred`: the
    pending transitions that must wait (their node is offline, so their state is stale).
    `dropped`: resources whose pending holds end unsent (they started flapping)."""
    waiting = {k: p for k, p in pending.items() if p.rid not in dropped}
    out: list[Event] = []
    for event in events:
        key = hold_key(event)
        if key is None or event.suppressed in OWN_REASONS:
            out.append(event)
            continue
        before = waiting.pop(key, None)
        change = event.change
        if before is not None and change is not None and change.new == before.origin:
            out.append(suppress(event, HELD))  # flipped back: neither is sent
            continue
        secs = hold_secs.get(event.type, 0.0)
        origin = before.origin if before is not None else change.old if change else None
        held = Pending.of(event, origin, now + timedelta(seconds=secs))
        if held is None or secs <= 0 or event.suppressed or event.detected_late or not observed:
            out.append(event)
            continue
        waiting[key] = held
        out.append(suppress(event, HELD))
    confirmed = _lasted(waiting, new, now, deferred) if observed else []
    return out, confirmed, waiting


def _lasted(
    waiting: dict[str, Pending], new: Snapshot, now: datetime, deferred: Callable[[Event], bool]
) -> list[Event]:
    """Send the holds that are over and whose transition still holds; forget the others
    (what they changed is gone again, e.g. flipped back between two polls)."""
    confirmed: list[Event] = []
    for key in sorted(waiting):
        p = waiting[key]
        if p.due > now or deferred(p.event):
            continue
        del waiting[key]
        resource = new.resources.get(p.rid)
        if resource is None or field_value(resource, p.field) != p.new:
            continue
        held_for = (p.due - p.event.time).total_seconds()
        confirmed.append(
            replace(
                p.event,
                id=derived_id(p.event.id, "held"),
                suppressed=None,
                details={**p.event.details, "held_secs": held_for},
            )
        )
    return confirmed
