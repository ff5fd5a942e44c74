"""Resolved and reminders: problem events start a condition, the event that ends it says so.

A condition is named after the type of the event that starts it and what it is about
(`guest.stopped:qemu/100`, `node.offline:node/pve3`, `storage.unavailable:storage/pve1/nfs`,
`guest.threshold_exceeded:qemu/100|cpu`, `cluster.quorum_lost`, `source.unreachable`), so
sinks can treat it as an alert name. The event that starts it carries it in `condition`;
the event that ends it carries the same `condition` and `resolves` = the id of the event
that started it. An event has one of the two roles at most. Open conditions are kept in
the state, so a resolution after a restart still pairs up.

With `repeat_interval_secs`, an open condition that is still true per the snapshot is sent
again that often: the starting event with a new id and `details.reminder` = 1, 2, ...
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from pvewatch.model import Event, ResourceRef, Severity, Snapshot
from pvewatch.watch.diff import diff
from pvewatch.watch.shape.common import OWN_REASONS, derived_id, iso, load_time, noun
from pvewatch.watch.shape.flapping import GOOD_STATUS

# A stop that one of these explains is not a problem: someone or something meant it.
_EXPLAINED = frozenset({"user", "backup", "migration", "ha", "replication"})
# The problems of a resource's status, by noun: one of them open at a time ("down").
_DOWN: Mapping[str, tuple[str, ...]] = {
    "guest": ("guest.stopped", "guest.status_changed"),
    "node": ("node.offline",),
    "storage": ("storage.unavailable",),
}
# The conditions an event type ends.
_ENDS: Mapping[str, tuple[str, ...]] = {
    "guest.started": _DOWN["guest"],
    "guest.resumed": _DOWN["guest"],
    "guest.removed": (*_DOWN["guest"], "guest.flapping"),
    "node.online": _DOWN["node"],
    "node.removed": (*_DOWN["node"], "node.flapping"),
    "storage.available": _DOWN["storage"],
    "storage.removed": (*_DOWN["storage"], "storage.flapping"),
    "cluster.quorum_regained": ("cluster.quorum_lost",),
    "source.recovered": ("source.unreachable",),
    **{f"{n}.flapping_ended": (f"{n}.flapping",) for n in _DOWN},
    **{f"{n}.threshold_cleared": (f"{n}.threshold_exceeded",) for n in _DOWN},
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


def _key(name: str, event: Event) -> str:
    """`name:subject`: the resource, and for a threshold also the metric."""
    if event.resource is None:
        return name
    metric = event.details.get("metric") if "threshold" in name else None
    return f"{name}:{event.resource.id}|{metric}" if metric else f"{name}:{event.resource.id}"


def _problem(event: Event) -> str | None:
    """The condition an event starts (its type), or None."""
    t = event.type
    if t == "guest.stopped":
        return None if event.cause and event.cause.kind in _EXPLAINED else t
    if t == "guest.status_changed":
        return t if event.severity is Severity.CRITICAL else None
    if t in ("node.offline", "storage.unavailable", "cluster.quorum_lost", "source.unreachable"):
        return t
    verb = t.partition(".")[2]
    return t if verb in ("flapping", "threshold_exceeded") else None


def track(
    events: list[Event], conditions: Mapping[str, Open], new: Snapshot, now: datetime
) -> tuple[list[Event], dict[str, Open]]:
    """Set `condition` and `resolves` on the events that are sent; update what is open."""
    state = dict(conditions)
    out: list[Event] = []
    for event in events:
        if event.suppressed in OWN_REASONS:
            out.append(event)  # a transition held, inhibited or flapping ends nothing
            continue
        event = _mark(event, state, now)
        out.append(event)
        if event.type.endswith(".flapping_ended"):
            out += [_mark(e, state, now) for e in _settle(event, state, new, now)]
    return out, state


def _mark(event: Event, state: dict[str, Open], now: datetime) -> Event:
    ended = _ended(event, state)
    if ended is not None:
        return replace(event, condition=event.condition or ended[0], resolves=ended[1].event.id)
    if event.resolves:
        return event  # resolved by the rule that made it (it knows what it ends)
    name = _problem(event)
    key = event.condition or (_key(name, event) if name else None)
    if key is None:
        return event
    if event.resource is not None and name in _DOWN.get(noun(event.resource.type), ()):
        # A guest that crashed (io-error) and then stopped is one problem, not two.
        key = _open_down(event.resource, state) or key
    state.setdefault(key, Open(replace(event, condition=key), now))
    return replace(event, condition=key)


def _ended(event: Event, state: dict[str, Open]) -> tuple[str, Open] | None:
    """Close what the event ends; the first of them that was open."""
    if event.resolves:
        closed = [k for k, o in state.items() if o.event.id == event.resolves]
        return (closed[0], state.pop(closed[0])) if closed else None
    found: tuple[str, Open] | None = None
    for name in _ENDS.get(event.type, ()):
        key = _key(name, event)
        opened = state.pop(key, None)
        if opened is not None and found is None:
            found = (key, opened)
    return found


def _open_down(ref: ResourceRef, state: Mapping[str, Open]) -> str | None:
    """The open condition that says the resource is down (stopped, offline, ...), if any."""
    keys = (f"{name}:{ref.id}" for name in _DOWN.get(noun(ref.type), ()))
    return next((k for k in keys if k in state), None)


def _settle(ended: Event, state: Mapping[str, Open], new: Snapshot, now: datetime) -> list[Event]:
    """After flapping, what the sinks last heard of the resource's status (down or not)
    is made true again: the transition from that to how it settled, if they differ."""
    resource = new.resources.get(ended.resource.id) if ended.resource else None
    if resource is None:
        return []
    good = GOOD_STATUS.get(noun(resource.type))
    down = _open_down(ResourceRef.of(resource), state)
    change = state[down].event.change if down else None
    was = change.new if change else good
    if (down is not None) == (resource.status != good) or not isinstance(was, str):
        return []
    before = Snapshot(new.cluster, {resource.id: replace(resource, status=was)}, now)
    after = Snapshot(new.cluster, {resource.id: resource}, now)
    note = {"after_flapping": ended.id}
    return [replace(e, details={**e.details, **note}) for e in diff(before, after, now)]


def remind(
    conditions: Mapping[str, Open],
    new: Snapshot,
    interval_secs: float | None,
    now: datetime,
    *,
    observed: bool,
    quiet: Callable[[str], bool],
) -> tuple[list[Event], dict[str, Open]]:
    """Reminders of the open conditions that are due and still true; the new state. A
    condition about a resource that is gone is forgotten. `quiet`: resources not to remind
    of (on an offline node, flapping)."""
    state = dict(conditions)
    reminders: list[Event] = []
    for key in sorted(state):
        o = state[key]
        rid = o.event.resource.id if o.event.resource else None
        if observed and rid is not None and rid not in new.resources:
            del state[key]
            continue
        due = interval_secs and now - o.last_sent >= timedelta(seconds=interval_secs)
        if not due or not _still(key, o, new, observed) or (rid and quiet(rid)):
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
    if name in ("guest.stopped", "guest.status_changed"):
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
