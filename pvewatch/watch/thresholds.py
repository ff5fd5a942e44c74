"""Usage thresholds: cpu, memory and disk of guests and nodes, usage of storages, with
hysteresis and a hold. Pure. Off unless `thresholds:` names a metric.

`normalize` drops the counters from the snapshot (they are never changes), so the
pipeline takes the ratios from the raw rows first (`usage`). A threshold fires
(`*.threshold_exceeded`) once the ratio has stayed at or above `trigger` for `for_secs`,
and clears (`*.threshold_cleared`) once it has stayed at or below `clear` for `for_secs`.
A resource that reports no number (a stopped guest, an offline node) keeps its state; one
that is gone is forgotten. The state, per `<resource id>|<metric>`: `firing` and `since`
(when the ratio crossed toward the other side; absent when it did not).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pvewatch.config.rules import Threshold
from pvewatch.model import EVENT_TYPES, Change, Event, Resource, ResourceRef, Snapshot, event_id
from pvewatch.watch.diff import label

# Which resource types each metric applies to, and the event noun for each type.
_APPLIES: Mapping[str, frozenset[str]] = {
    "cpu": frozenset({"qemu", "lxc", "node"}),
    "memory": frozenset({"qemu", "lxc", "node"}),
    "disk": frozenset({"lxc", "node"}),  # a VM's `disk` is always 0 (FACTS.md §2.2)
    "storage": frozenset({"storage"}),
}
_NOUN = {"qemu": "guest", "lxc": "guest", "node": "node", "storage": "storage"}
# Only a live resource reports real numbers.
_LIVE = {"qemu": "running", "lxc": "running", "node": "online", "storage": "available"}


def usage(rows: Iterable[object]) -> dict[str, dict[str, float]]:
    """Per resource id: the ratios `cpu`, `memory`, `disk` (guests, nodes), `storage`
    (storages) where PVE reports them, and `uptime` (seconds) of guests and nodes."""
    found: dict[str, dict[str, float]] = {}
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            continue
        rtype = row.get("type")
        numbers: dict[str, float] = {}
        uptime = _number(row.get("uptime"))
        if uptime is not None and rtype in ("qemu", "lxc", "node"):
            numbers["uptime"] = uptime
        if isinstance(rtype, str) and row.get("status") == _LIVE.get(rtype):
            numbers |= _ratios(rtype, row)
        if numbers:
            found[row["id"]] = numbers
    return found


def _ratios(rtype: str, row: Mapping[str, object]) -> dict[str, float]:
    if rtype == "storage":
        storage = _ratio(row.get("disk"), row.get("maxdisk"))
        return {} if storage is None else {"storage": storage}
    ratios = {
        "cpu": _number(row.get("cpu")),
        "memory": _ratio(row.get("mem"), row.get("maxmem")),
        "disk": _ratio(row.get("disk"), row.get("maxdisk")) if rtype != "qemu" else None,
    }
    return {k: v for k, v in ratios.items() if v is not None}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def _ratio(used: object, total: object) -> float | None:
    u, t = _number(used), _number(total)
    return None if u is None or not t else u / t


def evaluate(
    snapshot: Snapshot,
    metrics: Mapping[str, Mapping[str, float]],
    state: object,
    config: Mapping[str, Threshold],
    now: datetime,
) -> tuple[list[Event], dict[str, Any]]:
    """Threshold events of this poll and the new threshold state."""
    if not config:
        return [], {}  # thresholds are off: no state either
    old: Mapping[str, Any] = state if isinstance(state, dict) else {}
    new_state: dict[str, Any] = {}
    events: list[Event] = []
    for rid, resource in sorted(snapshot.resources.items()):
        for metric, threshold in sorted(config.items()):
            if resource.type not in _APPLIES.get(metric, ()):
                continue
            key = f"{rid}|{metric}"
            value = metrics.get(rid, {}).get(metric)
            was = old.get(key)
            firing, since, flipped = step(
                was if isinstance(was, dict) else {}, value, threshold, now.timestamp()
            )
            if flipped and value is not None:
                events.append(
                    _event(snapshot.cluster, resource, metric, value, threshold, firing, now)
                )
            if firing or since is not None:
                new_state[key] = {"firing": firing} | ({} if since is None else {"since": since})
    return events, new_state


def step(
    was: Mapping[str, Any], value: float | None, threshold: Threshold, stamp: float
) -> tuple[bool, float | None, bool]:
    """One measurement of one threshold: (firing, since, whether it flipped now)."""
    firing, since = was.get("firing") is True, _number(was.get("since"))
    if value is None:
        return firing, None, False  # no number now: a pending crossing starts over
    crossing = value <= threshold.clear if firing else value >= threshold.trigger
    if not crossing:
        return firing, None, False
    since = stamp if since is None else since
    if stamp - since >= threshold.for_secs:
        return not firing, None, True
    return firing, since, False


def _event(
    cluster: str,
    resource: Resource,
    metric: str,
    value: float,
    threshold: Threshold,
    exceeded: bool,
    now: datetime,
) -> Event:
    noun = _NOUN[resource.type]
    type_ = f"{noun}.threshold_{'exceeded' if exceeded else 'cleared'}"
    limit = threshold.trigger if exceeded else threshold.clear
    relation = "at or above" if exceeded else "back at or below"
    held = f" for {threshold.for_secs:g}s" if threshold.for_secs else ""
    what = "usage" if metric == "storage" else f"{metric} usage"
    summary = f"{label(resource)} {what} {value:.0%}, {relation} {limit:.0%}{held}"
    return Event(
        id=event_id(cluster, type_, f"{resource.id}|{metric}", None, now),
        type=type_,
        time=now,
        cluster=cluster,
        severity=EVENT_TYPES[type_].severity,
        summary=summary,
        resource=ResourceRef.of(resource),
        change=Change(metric, None, round(value, 4)),
        details={
            "metric": metric,
            "value": round(value, 4),
            "trigger": threshold.trigger,
            "clear": threshold.clear,
            "for_secs": threshold.for_secs,
        },
    )
