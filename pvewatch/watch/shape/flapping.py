"""Flapping: more than `transitions` status changes of one resource within `window_secs`
is one `*.flapping` event; then the resource's events are recorded but not sent
(`suppressed="flapping"`) until it has had no status change for `stable_secs`, which is
one `*.flapping_ended` event with the state it settled in and the count."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from pvewatch.config.shape import FlappingConfig
from pvewatch.model import EVENT_TYPES, Event, ResourceRef, Severity, Snapshot
from pvewatch.watch.diff import label
from pvewatch.watch.shape.common import (
    FLAPPING,
    INHIBITED,
    derived_id,
    iso,
    load_time,
    noun,
    status_transition,
    suppress,
)

GOOD_STATUS = {"guest": "running", "node": "online", "storage": "available"}


@dataclass(frozen=True, slots=True)
class Flap:
    """The recent status changes of one resource; `since` is set while it is flapping."""

    times: tuple[datetime, ...] = ()  # within the window (not kept while flapping)
    last: datetime | None = None
    since: datetime | None = None
    event_id: str | None = None  # the *.flapping event
    count: int = 0  # status changes since it began flapping, the first ones included

    def dump(self) -> dict[str, Any]:
        return {
            "times": [iso(t) for t in self.times],
            "last": iso(self.last) if self.last else None,
            "since": iso(self.since) if self.since else None,
            "event": self.event_id,
            "count": self.count,
        }

    @classmethod
    def load(cls, raw: Any) -> Flap | None:
        times = tuple(t for t in map(load_time, raw.get("times") or ()) if t is not None)
        event = raw.get("event")
        return cls(
            times=times,
            last=load_time(raw.get("last")),
            since=load_time(raw.get("since")),
            event_id=event if isinstance(event, str) else None,
            count=int(raw.get("count") or 0),
        )


def flapping(
    events: list[Event],
    new: Snapshot,
    config: FlappingConfig | None,
    flaps: Mapping[str, Flap],
    now: datetime,
    *,
    observed: bool,
) -> tuple[list[Event], list[Event], dict[str, Flap], frozenset[str]]:
    """The events (those of flapping resources marked), the flapping / flapping_ended
    events made, the new state, and the resources that started flapping at this poll."""
    if config is None:
        return events, [], {}, frozenset()
    window = timedelta(seconds=config.window_secs)
    state = dict(flaps)
    out: list[Event] = []
    made: list[Event] = []
    started: set[str] = set()
    for event in events:
        rid = event.resource.id if event.resource else None
        flap = state.get(rid) if rid else None
        if rid is None or (flap is None and not status_transition(event)):
            out.append(event)
        elif event.type.endswith(".removed"):
            state.pop(rid, None)  # the removal ends it, and resolves it (conditions)
            out.append(event)
        elif not status_transition(event) or event.suppressed == INHIBITED:
            # Stale changes (node offline) are no flapping; other events of a flapping
            # resource (HA state, lock, ...) go quiet with it.
            out.append(suppress(event, FLAPPING) if flap and flap.since else event)
        else:
            flap = flap or Flap()
            if flap.since is not None:
                state[rid] = replace(flap, last=now, count=flap.count + 1)
                out.append(suppress(event, FLAPPING))
                continue
            times = (*(t for t in flap.times if now - t < window), now)
            if len(times) <= config.transitions:
                state[rid] = replace(flap, times=times, last=now)
                out.append(event)
                continue
            began = _began(event, new, len(times), config)
            made.append(began)
            state[rid] = Flap((), now, now, began.id, len(times))
            started.add(rid)
            out.append(suppress(event, FLAPPING))
    if observed:
        made += _settled(state, new, config, now)
    for rid, flap in list(state.items()):
        if flap.since is None and not any(now - t < window for t in flap.times):
            del state[rid]
    return out, made, state, frozenset(started)


def _began(trigger: Event, new: Snapshot, count: int, config: FlappingConfig) -> Event:
    # A status transition: it has a resource and a change.
    assert trigger.resource is not None
    assert trigger.change is not None
    type_ = f"{noun(trigger.resource.type)}.flapping"
    resource = new.resources.get(trigger.resource.id)
    name = label(resource) if resource else trigger.resource.id
    return Event(
        id=derived_id(trigger.id, "flapping"),
        type=type_,
        time=trigger.time,
        cluster=trigger.cluster,
        severity=EVENT_TYPES[type_].severity,
        summary=(
            f"{name} is flapping: {count} status changes in {_span(config.window_secs)}, now "
            f"{trigger.change.new}; its changes are not sent until it has been stable for "
            f"{_span(config.stable_secs)}"
        ),
        resource=trigger.resource,
        details={"status": trigger.change.new, "transitions": count},
    )


def _settled(
    state: dict[str, Flap], new: Snapshot, config: FlappingConfig, now: datetime
) -> list[Event]:
    """One flapping_ended per resource that has been stable long enough."""
    stable = timedelta(seconds=config.stable_secs)
    ended: list[Event] = []
    for rid in sorted(state):
        flap = state[rid]
        if flap.since is None or flap.last is None or now - flap.last < stable:
            continue
        del state[rid]
        resource = new.resources.get(rid)
        if resource is None or flap.event_id is None:
            continue
        kind = noun(resource.type)
        type_ = f"{kind}.flapping_ended"
        good = resource.status == GOOD_STATUS.get(kind)
        ended.append(
            Event(
                id=derived_id(flap.event_id, "ended"),
                type=type_,
                time=now,
                cluster=new.cluster,
                severity=EVENT_TYPES[type_].severity if good else Severity.WARNING,
                summary=(
                    f"{label(resource)} stopped flapping after {flap.count} status changes "
                    f"in {_span((flap.last - flap.since).total_seconds())}; now "
                    f"{resource.status or 'unknown'}"
                ),
                resource=ResourceRef.of(resource),
                details={
                    "status": resource.status,
                    "transitions": flap.count,
                    "since": iso(flap.since),
                },
            )
        )
    return ended


def _span(secs: float) -> str:
    if secs >= 120 and secs % 60 == 0:
        return f"{secs / 60:g} min"
    return f"{secs:g} s"
