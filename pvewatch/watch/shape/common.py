"""What the shaping stages share: ids of the events they make, the reasons they suppress
with, and reading their JSON state back without trusting it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from pvewatch.model import Event, JSONValue, Resource, Snapshot, format_time, parse_time

HELD = "held"
INHIBITED = "inhibited"
FLAPPING = "flapping"
# The reasons this step suppresses with; others (silenced, maintenance) come from elsewhere.
OWN_REASONS = frozenset({HELD, INHIBITED, FLAPPING})
STATUS_TYPES = {"qemu": "guest", "lxc": "guest", "node": "node", "storage": "storage"}

T = TypeVar("T")


def derived_id(base_id: str, tag: str) -> str:
    """The id of an event this step makes from another (a held transition confirmed, a
    reminder, ...): deterministic, so a retried or replayed poll makes the same one, and
    distinct from the id it derives from."""
    return "evt_" + hashlib.sha256(f"{base_id}#{tag}".encode()).hexdigest()[:26]


def suppress(event: Event, reason: str) -> Event:
    """Recorded, sent nowhere; a reason given earlier (a silence, ...) is kept."""
    return event if event.suppressed else replace(event, suppressed=reason)


def status_transition(event: Event) -> bool:
    """A change of the status of a guest, node or storage (what flapping counts)."""
    return (
        event.resource is not None
        and event.change is not None
        and event.change.field == "status"
        and event.resource.type in STATUS_TYPES
    )


def noun(resource_type: str) -> str:
    return STATUS_TYPES.get(resource_type, "resource")


def current(snapshot: Snapshot, rid: str) -> Resource | None:
    return snapshot.resources.get(rid)


def field_value(resource: Resource, field: str) -> JSONValue:
    value = getattr(resource, field, None)
    return list(value) if isinstance(value, tuple) else value


def node_name(resource: Resource) -> str:
    """`node/pve3` → pve3 (a node row names itself in `node`)."""
    return resource.node or resource.id.rpartition("/")[2]


def iso(t: datetime) -> str:
    return format_time(t)


def load_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


def load_entries(raw: object, load: Callable[[Any], T | None]) -> dict[str, T]:
    """A JSON object of entries, each read by `load`; what cannot be read is dropped: the
    state is ours, but a damaged entry must cost that entry, never the poll."""
    if not isinstance(raw, Mapping):
        return {}
    entries: dict[str, T] = {}
    for key, value in raw.items():
        try:
            entry = load(value)
        except (KeyError, TypeError, ValueError, AttributeError):
            entry = None
        if isinstance(key, str) and entry is not None:
            entries[key] = entry
    return entries
