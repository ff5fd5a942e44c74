"""A small cluster and a poll loop for the shaping tests: snapshots → diff → shape, with the
state sent through JSON between polls as the store keeps it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pvewatch.config.shape import FlappingConfig, ShapeConfig
from pvewatch.model import EVENT_TYPES, Event, Resource, Snapshot, event_id
from pvewatch.watch.diff import diff
from pvewatch.watch.normalize import carry_forward
from pvewatch.watch.rule_input import RuleInput
from pvewatch.watch.shape.steps import shape

T0 = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
CLUSTER = "lab"
NO_HOLDS = ShapeConfig(hold_secs={}, flapping=None)


def at(secs: float) -> datetime:
    return T0 + timedelta(seconds=secs)


def guest(vmid: int, node: str = "pve1", status: str = "running", **fields: Any) -> Resource:
    return Resource(
        id=f"qemu/{vmid}", type="qemu", vmid=vmid, name=f"vm{vmid}", node=node, status=status,
        **fields,
    )  # fmt: skip


def node(name: str, status: str = "online") -> Resource:
    return Resource(id=f"node/{name}", type="node", node=name, status=status)


def storage(node_name: str, name: str = "local", status: str = "available") -> Resource:
    return Resource(
        id=f"storage/{node_name}/{name}", type="storage", node=node_name, status=status,
        attrs={"storage": name},
    )  # fmt: skip


def cluster(*resources: Resource) -> dict[str, Resource]:
    return {r.id: r for r in resources}


def with_status(resources: Mapping[str, Resource], **statuses: str) -> dict[str, Resource]:
    """`with_status(c, **{"qemu/100": "stopped"})`: a copy with some statuses changed."""
    return {rid: replace(r, status=statuses.get(rid, r.status)) for rid, r in resources.items()}


def poll_input(old: Snapshot | None, new: Snapshot, polled: bool = True) -> RuleInput:
    """What shaping reads of a poll: the snapshots, and whether the poll worked."""
    return RuleInput(old, new, [], None, new.taken_at, late=False, polled=polled)


def quorum_event(type_: str, now: datetime) -> Event:
    return Event(
        id=event_id(CLUSTER, type_, "cluster", None, now),
        type=type_,
        time=now,
        cluster=CLUSTER,
        severity=EVENT_TYPES[type_].severity,
        summary=type_,
    )


@dataclass
class Run:
    """Polls one cluster through diff and shape, keeping what a store would keep."""

    config: ShapeConfig = field(default_factory=ShapeConfig)
    state: dict[str, Any] = field(default_factory=dict)
    snapshot: Snapshot | None = None
    recorded: list[Event] = field(default_factory=list)

    def poll(
        self,
        secs: float,
        resources: Mapping[str, Resource],
        *,
        quorate: bool | None = None,
        extra: Iterable[Event] = (),
        late: bool = False,
    ) -> list[Event]:
        now = at(secs)
        new = carry_forward(self.snapshot, Snapshot(CLUSTER, dict(resources), now, quorate))
        events = diff(self.snapshot, new, now, late=late) + list(extra)
        out = self._shape(events, poll_input(self.snapshot, new), now)
        self.snapshot = new
        return out

    def failed(self, secs: float, events: Iterable[Event] = ()) -> list[Event]:
        now = at(secs)
        last = self.snapshot or Snapshot(CLUSTER, {}, now)
        return self._shape(list(events), poll_input(last, last, polled=False), now)

    def _shape(self, events: list[Event], poll: RuleInput, now: datetime) -> list[Event]:
        out, state = shape(events, poll, self.config, self.state, now)
        assert {e.id for e in events} <= {e.id for e in out}, "an event went missing"
        assert len({e.id for e in self.recorded + out}) == len(self.recorded) + len(out)
        self.state = json.loads(json.dumps(state))  # what the store keeps is JSON
        self.recorded += out
        return out

    def sent(self, *, resource: str | None = None) -> list[Event]:
        return [
            e
            for e in self.recorded
            if not e.suppressed and (resource is None or (e.resource and e.resource.id == resource))
        ]

    def sent_types(self, resource: str | None = None) -> list[str]:
        return [e.type for e in self.sent(resource=resource)]


def holds(**secs: float) -> ShapeConfig:
    """Holds by type (`holds(guest_stopped=30)`), no flapping."""
    return ShapeConfig(
        hold_secs={k.replace("_", ".", 1): v for k, v in secs.items()}, flapping=None
    )


def flaps(transitions: int, window: float, stable: float, **hold: float) -> ShapeConfig:
    return replace(holds(**hold), flapping=FlappingConfig(transitions, window, stable))
