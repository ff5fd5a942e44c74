"""What the metrics say, before any Prometheus library is involved: the labels and values
of a resource's series, and a histogram's buckets. Pure: no clock, no I/O.

Labels are inline (cluster, id, type, name, node, pool on every resource series; the info
series adds status, tags, template, hastate and lock), so that an alert can name a guest
and its node without joining series.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pvewatch.model import Resource

RESOURCE_LABELS = ("cluster", "id", "type", "name", "node", "pool")
INFO_LABELS = ("status", "tags", "template", "hastate", "lock")
# The status of each type that means "up" (FACTS.md 2.5): guests, nodes, storages, SDN.
UP_STATUSES = frozenset({"running", "online", "available", "ok"})


def resource_labels(cluster: str, r: Resource) -> list[str]:
    """The values of RESOURCE_LABELS, in that order ("" for what a resource lacks)."""
    return [cluster, r.id, r.type, display_name(r), r.node or "", r.pool or ""]


def display_name(r: Resource) -> str:
    """A guest's name; other types have none in PVE and are named by their own field
    (`node`, `storage`, `sdn`, `network`, `pool`)."""
    if r.name:
        return r.name
    own = r.attrs.get(r.type)
    if isinstance(own, str) and own:
        return own
    return (r.node if r.type == "node" else r.pool if r.type == "pool" else None) or ""


def info_labels(r: Resource) -> dict[str, str]:
    return {
        "status": r.status or "",
        "tags": ";".join(sorted(r.tags)),
        "template": "1" if r.template else "0",
        "hastate": r.hastate or "",
        "lock": r.lock or "",
    }


def up_value(r: Resource) -> float | None:
    """1 or 0; None for a resource without a status (pools), which gets no up series."""
    if r.status is None:
        return None
    return 1.0 if r.status in UP_STATUSES else 0.0


@dataclass(slots=True)
class Histogram:
    """Observations counted into fixed buckets (upper bounds, ascending)."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)  # one per bound, then +Inf
    total: float = 0.0

    def observe(self, value: float) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)
        i = next((i for i, b in enumerate(self.bounds) if value <= b), len(self.bounds))
        self.counts[i] += 1
        self.total += value

    def copy(self) -> Histogram:
        return Histogram(self.bounds, list(self.counts), self.total)

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative counts per `le`, ending with "+Inf" (the total count)."""
        counts = self.counts or [0] * (len(self.bounds) + 1)
        running, out = 0, []
        for bound, n in zip((*map(str, self.bounds), "+Inf"), counts, strict=True):
            running += n
            out.append((bound, float(running)))
        return out
