"""Resolved and reminders: problem events start a condition, the event that ends it says so.

A problem event gets `condition` (`guest.down:qemu/100`, `node.offline:node/pve3`,
`storage.unavailable:storage/pve1/local`, `cluster.quorum_lost`, `source.unreachable`, ...);
the event that ends the condition gets `resolves` = the id of the event that started it.
Open conditions are kept in the state, so a resolution after a restart still pairs up.
With `repeat_interval_secs`, an open condition that is still true per the snapshot is sent
again that often: the firing event with a new id and `details.reminder` = 1, 2, ...
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from pvewatch.model import Event, Severity, Snapshot
from pvewatch.watch.shape.common import OWN_REASONS, derived_id, iso, load_time
from pvewatch.watch.shape.flapping import GOOD_STATUS

# A stop that one of these explains is not a problem: someone or something meant it.
_EXPLAINED = frozenset({"user", "backup", "migration", "ha", "replication"})
_PROBLEM = {"guest": "guest.down", "node": "node.offline", "storage": "storage.unavailable"}
# The conditions an event type ends (the first one open is named in `resolves`).
_ENDS: Mapping[str, tuple[str, ...]] = {
    "guest.started": ("guest.down",),
    "guest.resumed": ("guest.down",),
    "guest.removed": ("guest.down", "guest.flapping"),
    "node.online": ("node.offline",),
    "node.removed": ("node.offline", "node.flapping"),
    "storage.available": ("storage.unavailable",),
    "storage.removed": ("storage.unavailable", "storage.flapping"),
    "cluster.quorum_regained": ("cluster.quorum_lost",),
    "source.recovered": ("source.unreachable",),
    # Flapping takes over a problem open on the resource, and its end hands it back.
    "guest.flapping": ("guest.down",),
    "node.flapping": ("node.offline",),
    "storage.flapping": ("storage.unavailable",),
    "guest.flapping_ended": ("guest.flapping",),
    "node.flapping_ended": ("node.flapping",),
    "storage.flapping_ended": ("storage.flapping",),
    "guest.threshold_cleared": ("guest.threshold_exceeded",),
    "node.threshold_cleared": ("node.threshold_exceeded",),
    "storage.threshold_cleared": ("storage.threshold_exceeded",),
}


@dataclass(frozen=True, slots=True)
class Open:
    event: Event  # the event that started the condition
    last_sent: datetime
    reminders: int = 0

    def dump(self) -> dict[str, Any]:
        return {
            "event": self.event.to_dict(),
            "last_sent": iso(self.last_sent),
            "n": self.reminders,
        }

    @classmethod
    def load(cls, raw: Any) -> Open | None:
        last = load_time(raw["last_sent"])
        return cls(Event.from_dict(raw["event"]), last, int(raw.get("n") or 0)) if last else None


def starts(event: Event) -> str | None:
    """The condition an event starts, or None."""
    if event.condition:
        return event.condition
    name = _problem(event)
    if name is None:
        return None
    subject = _subject(event)
    return f"{name}:{subject}" if subject else name


def _subject(event: Event) -> str | None:
    """What a condition is about: the resource, and for a threshold also the metric."""
    if event.resource is None:
        return None
    metric = event.details.get("metric") if "threshold" in event.type else None
    return f"{event.resource.id}|{metric}" if metric else event.resource.id


def _problem(event: Event) -> str | None:
    t = event.type
    if t in ("node.offline", "storage.unavailable", "cluster.quorum_lost", "source.unreachable"):
        return t
    if t == "guest.stopped":
        return None if event.cause and event.cause.kind in _EXPLAINED else "guest.down"
    if t == "guest.status_changed":
        return "guest.down" if event.severity is Severity.CRITICAL else None
    kind, _, verb = t.partition(".")
    if verb in ("flapping", "threshold_exceeded"):
        return t
    if verb == "flapping_ended" and event.details.get("status") != GOOD_STATUS.get(kind):
        return _PROBLEM.get(kind)  # it settled in a bad state
    return None


def track(
    events: list[Event], conditions: Mapping[str, Open], now: datetime
) -> tuple[list[Event], dict[str, Open]]:
    """Set `condition` and `resolves` on the events that are sent; update what is open."""
    state = dict(conditions)
    out: list[Event] = []
    for event in events:
        if event.suppressed in OWN_REASONS:
            out.append(event)  # a transition held, inhibited or flapping ends nothing
            continue
        ended = _ended(event, state)
        if ended and event.resolves is None:
            event = replace(event, resolves=ended)
        key = starts(event)
        if key is not None:
            event = replace(event, condition=key)
            state.setdefault(key, Open(event, now))
        out.append(event)
    return out, state


def _ended(event: Event, state: dict[str, Open]) -> str | None:
    """Close what the event ends; the id of the first event that started one of them."""
    if event.resolves:
        for key in [k for k, o in state.items() if o.event.id == event.resolves]:
            del state[key]
        return None
    subject = _subject(event)
    found: str | None = None
    for name in _ENDS.get(event.type, ()):
        opened = state.pop(f"{name}:{subject}" if subject else name, None)
        if opened is not None and found is None:
            found = opened.event.id
    return found


def remind(
    conditions: Mapping[str, Open],
    new: Snapshot,
    interval_secs: float | None,
    now: datetime,
    *,
    observed: bool,
    inhibited: Callable[[str], bool],
) -> tuple[list[Event], dict[str, Open]]:
    """Reminders of the open conditions that are due and still true; the new state. A
    condition about a resource that is gone is forgotten."""
    state = dict(conditions)
    reminders: list[Event] = []
    for key in sorted(state):
        o = state[key]
        rid = o.event.resource.id if o.event.resource else None
        if observed and rid is not None and rid not in new.resources:
            del state[key]
            continue
        due = interval_secs and now - o.last_sent >= timedelta(seconds=interval_secs)
        if not due or not _still(key, o, new, observed) or (rid and inhibited(rid)):
            continue
        n = o.reminders + 1
        reminders.append(
            replace(
                o.event,
                id=derived_id(o.event.id, f"reminder:{n}"),
                time=now,
                summary=f"still: {o.event.summary} (since {iso(o.event.time)})",
                detected_late=False,
                resolves=None,
                details={**o.event.details, "reminder": n, "first_event": o.event.id},
            )
        )
        state[key] = Open(o.event, now, n)
    return reminders, state


def _still(key: str, opened: Open, new: Snapshot, observed: bool) -> bool:
    """Whether a condition is still true, as far as the snapshot tells. While the cluster
    cannot be polled only its own outage is (everything else is unknown)."""
    name = key.partition(":")[0]
    if name == "source.unreachable" or not observed:
        return name == "source.unreachable" and not observed
    resource = new.resources.get(opened.event.resource.id) if opened.event.resource else None
    status = resource.status if resource else None
    if name == "guest.down":
        return status != "running"
    if name == "node.offline":
        return status == "offline"
    if name == "storage.unavailable":
        return status != "available"
    if name == "cluster.quorum_lost":
        return new.quorate is False
    # Flapping ends with its own summary; other conditions (thresholds, ...) end with the
    # events of the rules that started them.
    return not name.endswith(".flapping")
