"""Which events a sink receives: the `filter:` of a sink, and the routing of one event to
the names of the sinks that take it. Pure: no clock, no I/O. A ground-layer module: the
config builds filters, the pipeline, delivery and the metrics route with them.

A filter is a conjunction: every criterion that is set must match, and a list matches
when any of its entries does (`tags` with `tags_match: all` needs every tag). Strings are
shell-style globs (`guest.*`, `pve[12]`). Criteria about the resource (nodes,
resource_types, tags, pools, vmids) never match an event without one (source.*,
cluster.*). `exclude` has the same form and drops what it matches.

A resolving event (`resolves` set) reaches the sinks its problem reached: its condition
key names the problem's type (`node.offline:node/pve3`), which counts for `types` and,
through the catalogue, for `min_severity` beside the event's own type and severity.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Protocol

from pvewatch.model import EVENT_TYPES, Event, ResourceRef, Severity

SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


@dataclass(frozen=True, slots=True)
class SinkFilter:
    """Empty tuples and None mean "no constraint": `SinkFilter()` matches every event."""

    types: tuple[str, ...] = ()
    min_severity: Severity | None = None
    clusters: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    resource_types: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    tags_match: str = "any"  # "any" or "all"
    pools: tuple[str, ...] = ()
    vmids: tuple[tuple[int, int], ...] = ()  # inclusive ranges; 100 is (100, 100)
    exclude: SinkFilter | None = None


class RoutedSink(Protocol):
    """What routing needs of a sink's config (`pvewatch.config.types.SinkConfig` has it)."""

    @property
    def name(self) -> str: ...
    @property
    def filter(self) -> SinkFilter | None: ...
    @property
    def send_resolved(self) -> bool: ...


def route(sinks: Iterable[RoutedSink], event: Event) -> list[str]:
    """The names of the sinks that receive `event`, in the order given. A suppressed event
    is recorded only; a resolving one skips sinks with `send_resolved: false`."""
    if event.suppressed:
        return []
    return [
        s.name
        for s in sinks
        if (s.send_resolved or not event.resolves)
        and (s.filter is None or matches(s.filter, event))
    ]


def matches(f: SinkFilter, event: Event) -> bool:
    """Whether a sink with filter `f` receives `event`."""
    if not _included(f, event):
        return False
    return f.exclude is None or not matches(f.exclude, event)


def _included(f: SinkFilter, event: Event) -> bool:
    if f.types and not any(_glob(f.types, t) for t in _types(event)):
        return False
    if f.min_severity is not None and _severity(event) < SEVERITY_RANK[f.min_severity]:
        return False
    if f.clusters and not _glob(f.clusters, event.cluster):
        return False
    if not (f.nodes or f.resource_types or f.tags or f.pools or f.vmids):
        return True
    r = event.resource
    return r is not None and _resource_included(f, r, _nodes(event, r))


def _resource_included(f: SinkFilter, r: ResourceRef, nodes: list[str]) -> bool:
    if f.nodes and not any(_glob(f.nodes, n) for n in nodes):
        return False
    if f.resource_types and not _glob(f.resource_types, r.type):
        return False
    if f.pools and not (r.pool is not None and _glob(f.pools, r.pool)):
        return False
    if f.vmids and not (r.vmid is not None and any(lo <= r.vmid <= hi for lo, hi in f.vmids)):
        return False
    if f.tags:
        hit = [any(fnmatchcase(tag, p) for tag in r.tags) for p in f.tags]
        return all(hit) if f.tags_match == "all" else any(hit)
    return True


def _glob(patterns: tuple[str, ...], value: str) -> bool:
    return any(fnmatchcase(value, p) for p in patterns)


def _types(event: Event) -> list[str]:
    """The event's type, and for a resolving event the type of the problem it ends."""
    types = [event.type]
    if event.resolves and event.condition:
        types.append(event.condition.partition(":")[0])
    return types


def _severity(event: Event) -> int:
    rank = SEVERITY_RANK.get(event.severity, 0)
    for t in _types(event)[1:]:
        known = EVENT_TYPES.get(t)
        if known is not None:
            rank = max(rank, SEVERITY_RANK[known.severity])
    return rank


def _nodes(event: Event, r: ResourceRef) -> list[str]:
    """The resource's node, and for a migration the node it left too: a sink watching
    pve1 hears that a guest moved away."""
    nodes = [r.node] if r.node else []
    change = event.change
    if change is not None and change.field == "node" and isinstance(change.old, str):
        nodes.append(change.old)
    return nodes
