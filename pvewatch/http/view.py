"""What the read API (`api`) and the status page (`page`) show, read from the state store
as plain JSON-ready values. No HTTP here.

A `ReadView` is carried across reloads with the listener; each runtime gives it its store,
clusters and sinks (`reconfigure`). Everything is read from the store, so with replicas
sharing PostgreSQL any replica answers for every cluster. Nothing configured is shown but
the names of clusters and sinks: no URL, token or other option (which may be a secret).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pvewatch.model import format_time
from pvewatch.store.base import ClusterStatus, Delivery, EventQuery, Store

API_VERSION = 1


@dataclass(frozen=True, slots=True)
class Source:
    """What one runtime reads from: its store, the names it watches and delivers to, and
    whether writes (silences) are allowed: only when the listener asks for a password."""

    store: Store
    clusters: Sequence[str] = ()
    sinks: Sequence[str] = ()
    writable: bool = False


class Unavailable(Exception):
    """Nothing to read from (between two runtimes of a reload)."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ReadView:
    def __init__(self, source: Source | None = None, *, clock: Any = _utc_now) -> None:
        self._source = source
        self.clock = clock

    def reconfigure(self, source: Source | None) -> None:
        self._source = source

    @property
    def source(self) -> Source:
        source = self._source
        if source is None:
            raise Unavailable("pvewatch is starting or reloading")
        return source

    def status(self) -> dict[str, Any]:
        source = self.source
        stored = {s.cluster: s for s in source.store.status()}
        counts: dict[str, dict[str, dict[str, int]]] = {}
        for cluster, rtype, status, n in source.store.resource_counts():
            by_status = counts.setdefault(cluster, {}).setdefault(rtype, {})
            by_status[status or "unknown"] = n
        names = sorted(set(stored) | set(source.clusters))
        clusters = [
            cluster_status(
                name,
                stored.get(name),
                counts.get(name, {}),
                checks_of(source.store, name),
                watched=name in source.clusters,
            )
            for name in names
        ]
        return {"api": API_VERSION, "generated_at": format_time(self.clock()), "clusters": clusters}

    def events(self, query: EventQuery) -> dict[str, Any]:
        store = self.source.store
        found = store.browse(query)
        states: dict[str, list[dict[str, Any]]] = {e.id: [] for _, e in found}
        for d in store.delivery_states(list(states)):
            states[d.event_id].append(delivery(d))
        full = len(found) == query.limit
        return {
            "api": API_VERSION,
            "events": [e.to_dict() for _, e in found],
            "deliveries": states,
            "next": str(found[-1][0]) if found and full else None,
        }

    def deliveries(self) -> dict[str, Any]:
        source = self.source
        queues = {q.sink: q for q in source.store.queues()}
        names = sorted(set(queues) | set(source.sinks))
        sinks = []
        for name in names:
            q = queues.get(name)
            sinks.append(
                {
                    "sink": name,
                    "configured": name in source.sinks,
                    "pending": q.pending if q else 0,
                    "dead": q.dead if q else 0,
                    "last_error": q.last_error if q else None,
                }
            )
        return {"api": API_VERSION, "sinks": sinks}

    def silences(self) -> dict[str, Any]:
        source = self.source
        now = self.clock()
        found = [s.to_dict(now) for s in source.store.silences(now)]
        return {"api": API_VERSION, "writable": source.writable, "silences": found}


def cluster_status(
    name: str,
    stored: ClusterStatus | None,
    resources: Mapping[str, Mapping[str, int]],
    checks: list[dict[str, Any]],
    *,
    watched: bool,
) -> dict[str, Any]:
    health = stored.health if stored else None
    last_poll = stored.last_poll if stored else None
    return {
        "name": name,
        "watched": watched,
        "health": health_word(stored),
        "last_poll": None if last_poll is None else format_time(last_poll),
        "consecutive_failures": health.consecutive_failures if health else 0,
        "last_error": health.last_error if health else None,
        "leader": stored.leader if stored else None,
        "leader_since": (
            format_time(stored.leader_since) if stored and stored.leader_since else None
        ),
        "resources": {t: dict(sorted(s.items())) for t, s in sorted(resources.items())},
        "checks": checks,
    }


def health_word(stored: ClusterStatus | None) -> str:
    """ok, failing (polls fail, not yet for long), unreachable, or unknown (never polled)."""
    if stored is None:
        return "unknown"
    if stored.health.unreachable:
        return "unreachable"
    if stored.health.consecutive_failures:
        return "failing"
    return "ok" if stored.last_poll is not None else "unknown"


def checks_of(store: Store, cluster: str) -> list[dict[str, Any]]:
    """The health checks of `cluster` and their state (Store.check_states), for the
    `checks` of status: `state` is up, idle, disabled or failing."""
    return [
        {
            "name": c.name,
            "state": c.status,
            "last_run": None if c.last_run is None else format_time(c.last_run),
            "open_conditions": c.open_conditions,
            "detail": c.detail,
        }
        for c in store.check_states(cluster)
    ]


def delivery(d: Delivery) -> dict[str, Any]:
    return {"sink": d.sink, "state": d.state, "attempts": d.attempts, "last_error": d.last_error}
