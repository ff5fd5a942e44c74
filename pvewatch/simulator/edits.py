"""Merging control-API field edits (`PATCH /_sim/resources/{id}`) into entities.

A field that names an entity attribute (with `-` read as `_`, e.g. `cgroup-mode`) sets
that attribute after a type check; any other field lands in `extra` and is rendered as
given. `null` removes an optional field. Status changes that have a timeline (a guest
starting, a node going offline) and a node's `corosync` membership are handled by the
cluster before this runs (`node_status`, `membership` check their values).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pvewatch.errors import PvewatchError

# Attributes the control API may not set directly: identity, internal clocks and rates.
_INTERNAL = frozenset(
    {
        "extra",
        "started_at",
        "created_at",
        "rates",
        "online",
        "offline_since",
        "reporting",
        "boot_at",
        "nodeid",
        "ip",
        "vmid",
        "type",
        "storage",
        "zone",
        "active",
    }
)


class ControlError(PvewatchError):
    """A `/_sim/` control request cannot be applied; the message says what and where."""


def merge_fields(entity: Any, fields: dict[str, Any], where: str) -> None:
    names = {f.name: f for f in dataclasses.fields(entity)}
    for key, value in fields.items():
        attr = key.replace("-", "_")
        if attr in names and attr not in _INTERNAL:
            _set_checked(entity, attr, value, where)
        elif value is None:
            entity.extra.pop(key, None)
        else:
            entity.extra[key] = value


def merge_row(row: dict[str, Any], fields: dict[str, Any]) -> None:
    for key, value in fields.items():
        if value is None:
            row.pop(key, None)
        else:
            row[key] = value


def _set_checked(entity: Any, attr: str, value: Any, where: str) -> None:
    current = getattr(entity, attr)
    if value is None:
        if isinstance(current, str) and attr in {"name", "status", "level", "node"}:
            raise ControlError(f"{where}: field {attr!r} cannot be removed")
        if not isinstance(current, str | None):
            raise ControlError(f"{where}: field {attr!r} cannot be removed")
        setattr(entity, attr, None)
        return
    if isinstance(current, bool | int | float) and not isinstance(current, bool):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ControlError(f"{where}: field {attr!r} must be a number, got {value!r}")
        setattr(entity, attr, type(current)(value) if isinstance(current, int) else value)
        return
    if not isinstance(value, str):
        raise ControlError(f"{where}: field {attr!r} must be a string, got {value!r}")
    setattr(entity, attr, value)


def node_status(value: object, where: str) -> str:
    """A node's `status`: online, offline (not a corosync member) or unknown (a member
    whose pvestatd is silent)."""
    if value not in ("online", "offline", "unknown"):
        raise ControlError(f"{where}: status must be online, offline or unknown, got {value!r}")
    return str(value)


def membership(value: object, where: str) -> bool:
    """A node's `corosync` membership, set apart from its status: online or offline."""
    if value not in ("online", "offline"):
        raise ControlError(f"{where}: corosync must be online or offline, got {value!r}")
    return value == "online"
