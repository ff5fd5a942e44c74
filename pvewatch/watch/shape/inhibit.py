"""Inhibition: one event for a cause, not one per thing it touches.

- A node offline: its `node.offline` event lists the guests and storages on it; their own
  events are recorded as `suppressed="inhibited"` while it is offline (PVE keeps showing
  their last values for minutes, then `unknown`: stale, neither running nor stopped). When
  the node is back, what differs from before the outage is sent (`details.reconciled`).
  Outages follow the snapshot (`node/X` status `offline`), not the events, so a held or
  attached `node.offline` still inhibits, and a restart in the middle of one continues it.
- Quorum lost: node events are attached to `cluster.quorum_lost` (or, later ones, to
  `cluster.quorum_regained`) in `details.node_events` instead of being sent one by one.
- `source.unreachable`: nothing else of that poll is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pvewatch.model import Event, JSONValue, Resource, Snapshot
from pvewatch.watch.diff import diff
from pvewatch.watch.normalize import GUEST_TYPES
from pvewatch.watch.shape.common import INHIBITED, iso, load_time, node_name, suppress

_MAX_ATTACHED = 200  # node events listed in one quorum event


@dataclass(frozen=True, slots=True)
class Outage:
    since: datetime
    members: Mapping[str, Resource]  # what was on the node before it went offline

    def dump(self) -> dict[str, Any]:
        return {"since": iso(self.since), "members": [r.to_dict() for r in self.members.values()]}

    @classmethod
    def load(cls, raw: Any) -> Outage | None:
        since = load_time(raw["since"])
        members = [Resource.from_dict(m) for m in raw["members"]]
        return cls(since, {r.id: r for r in members}) if since else None


@dataclass(frozen=True, slots=True)
class Outages:
    """The node outages after this poll, and what their members did."""

    active: dict[str, Outage]

    def inhibits(self, rid: str, new: Snapshot, fallback_node: str | None = None) -> bool:
        """Whether a (non-node) resource is on an offline node, by its current node."""
        resource = new.resources.get(rid)
        if resource is not None and resource.type == "node":
            return False
        where = resource.node if resource is not None else fallback_node
        return where is not None and where in self.active


def node_outages(
    events: list[Event],
    old: Snapshot | None,
    new: Snapshot,
    outages: Mapping[str, Outage],
    now: datetime,
) -> tuple[list[Event], Outages]:
    """Inhibit what is on offline nodes; reconcile the nodes that are back."""
    offline = {
        node_name(r) for r in new.resources.values() if r.type == "node" and r.status == "offline"
    }
    before = old or new
    # A member that moved off the node (HA recovery) is reported from where it is now.
    active = {n: _staying(n, o, new) for n, o in outages.items() if n in offline}
    for n in sorted(offline - active.keys()):
        on_node = {rid: r for rid, r in before.resources.items() if _on(r, n)}
        active[n] = Outage(now, on_node)
    ended = {n: o for n, o in outages.items() if n not in offline}
    reconciled = {e.id: e for n, o in sorted(ended.items()) for e in _reconcile(n, o, new, now)}
    returned = {rid for o in ended.values() for rid in o.members}
    result = Outages(active)
    out: list[Event] = []
    for event in events:
        if event.resource is None or event.resource.type == "node":
            out.append(_listing(event, active) if event.type == "node.offline" else event)
        elif result.inhibits(event.resource.id, new, event.resource.node):
            out.append(suppress(event, INHIBITED))
        elif event.resource.id in returned:
            # Back from an outage: the reconciled event (the same transition has the same
            # id) says what changed since before the outage, not this one.
            same = reconciled.pop(event.id, None)
            out.append(same if same is not None else suppress(event, INHIBITED))
        else:
            out.append(event)
    return out + list(reconciled.values()), result


def _staying(node: str, outage: Outage, new: Snapshot) -> Outage:
    members = {
        rid: r
        for rid, r in outage.members.items()
        if rid not in new.resources or new.resources[rid].node == node
    }
    return Outage(outage.since, members)


def _on(resource: Resource, node: str) -> bool:
    return resource.type != "node" and resource.node == node


def _reconcile(node: str, outage: Outage, new: Snapshot, now: datetime) -> list[Event]:
    """What differs, for what was on `node`, between before its outage and now."""
    after = {rid: new.resources[rid] for rid in outage.members if rid in new.resources}
    was = Snapshot(new.cluster, outage.members, outage.since)
    changes = diff(was, Snapshot(new.cluster, after, now), now, late=True)
    note: dict[str, JSONValue] = {"node": node, "offline_since": iso(outage.since)}
    return [replace(e, details={**e.details, "reconciled": note}) for e in changes]


def _listing(event: Event, active: Mapping[str, Outage]) -> Event:
    """`node.offline` with the guests and storages on the node (their last known state)."""
    if event.resource is None:
        return event
    outage = active.get(event.resource.node or event.resource.id.rpartition("/")[2])
    if outage is None:
        return event
    members = sorted(outage.members.values(), key=lambda r: r.id)
    guests: list[JSONValue] = [
        {"id": r.id, "vmid": r.vmid, "name": r.name, "last_status": r.status}
        for r in members
        if r.type in GUEST_TYPES
    ]
    storages: list[JSONValue] = [
        {"id": r.id, "storage": r.attrs.get("storage"), "last_status": r.status}
        for r in members
        if r.type == "storage"
    ]
    summary = f"{event.summary} ({_count(guests, 'guest')}, {_count(storages, 'storage')} on it)"
    return replace(
        event, summary=summary, details={**event.details, "guests": guests, "storages": storages}
    )


def _count(items: list[JSONValue], what: str) -> str:
    return f"{len(items)} {what}{'' if len(items) == 1 else 's'}"


def attach_to_quorum(
    events: list[Event], new: Snapshot, attached: list[JSONValue] | None
) -> tuple[list[Event], list[JSONValue] | None]:
    """While quorum is lost (from the `cluster.quorum_lost` event until
    `cluster.quorum_regained`), node events are recorded but listed in those two instead.
    `attached`: the node events listed since the quorum_lost event; None: quorum is not lost."""
    lost = next((e for e in events if e.type == "cluster.quorum_lost"), None)
    regained = next((e for e in events if e.type == "cluster.quorum_regained"), None)
    earlier = attached or []
    if lost is None and (attached is None or (new.quorate is True and regained is None)):
        return events, None
    listed: list[JSONValue] = []
    out: list[Event] = []
    for event in events:
        if event.type.startswith("node.") and event.resource and not event.suppressed:
            listed.append({"id": event.id, "type": event.type, "node": event.resource.node})
            event = suppress(event, INHIBITED)
        out.append(event)
    offline: list[JSONValue] = [
        *sorted(
            node_name(r)
            for r in new.resources.values()
            if r.type == "node" and r.status != "online"
        )
    ]
    if regained is not None:
        details = {"node_events": (earlier + listed)[:_MAX_ATTACHED], "nodes_offline": offline}
        return [_with(e, regained, details) for e in out], None
    if lost is not None:
        details = {"node_events": listed[:_MAX_ATTACHED], "nodes_offline": offline}
        return [_with(e, lost, details) for e in out], []
    return out, (earlier + listed)[:_MAX_ATTACHED]


def _with(event: Event, target: Event, details: Mapping[str, JSONValue]) -> Event:
    return replace(event, details={**event.details, **details}) if event is target else event


def source_outage(events: list[Event]) -> list[Event]:
    """A poll that ends in `source.unreachable` sends nothing else."""
    if not any(e.type == "source.unreachable" for e in events):
        return events
    return [e if e.type.startswith("source.") else suppress(e, INHIBITED) for e in events]
