"""Maintenance and silences: events that are recorded but sent nowhere. Pure.

An event is suppressed as `maintenance` when the guest or node it is about carries the
maintenance tag (default `maintenance`), or its node is in HA maintenance mode (node
`hastate: maintenance`, `ha-manager node-maintenance enable`); for a migration, the node
it left counts too. It is suppressed as `silenced` when an active silence matches it
(`pvewatch.silence` says which do).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from pvewatch.config.rules import MaintenanceConfig
from pvewatch.model import Event, Snapshot
from pvewatch.silence import Silence


def apply(
    events: Sequence[Event],
    snapshot: Snapshot,
    maintenance: MaintenanceConfig,
    silences: Sequence[Silence],
    now: datetime,
) -> list[Event]:
    """`events`, with those under maintenance or silenced marked `suppressed`. An event
    already suppressed (held, inhibited, ...) keeps its reason."""
    active = [s for s in silences if s.active(now)]
    out = []
    for event in events:
        if event.suppressed is None:
            silence = next((s for s in active if s.matches(event)), None)
            if silence is not None:
                details = {**event.details, "silence": silence.id}
                event = dataclasses.replace(event, suppressed="silenced", details=details)
            elif in_maintenance(event, snapshot, maintenance):
                event = dataclasses.replace(event, suppressed="maintenance")
        out.append(event)
    return out


def in_maintenance(event: Event, snapshot: Snapshot, config: MaintenanceConfig) -> bool:
    r = event.resource
    if r is None:
        return False
    if config.tag is not None and config.tag in (t.lower() for t in r.tags):
        return True
    nodes: set[str | None] = (
        {r.node or r.id.removeprefix("node/")} if r.type == "node" else {r.node}
    )
    if event.change is not None and event.change.field == "node":
        nodes.add(event.change.old if isinstance(event.change.old, str) else None)
    for name in nodes - {None}:
        node = snapshot.resources.get(f"node/{name}")
        if node is None:
            continue
        if config.tag is not None and config.tag in (t.lower() for t in node.tags):
            return True
        if config.ha_maintenance and node.hastate == "maintenance":
            return True
    return False
