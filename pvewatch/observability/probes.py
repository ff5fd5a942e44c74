"""What /healthz and /readyz answer: is the process alive, and is it doing its job.

- Liveness: the daemon's event loop beats a `Heartbeat` every second. The listener runs
  on its own thread, so it still answers when the loop is blocked, and says so.
- Readiness (`readiness`, pure): every cluster polled successfully within 3x its
  interval, and the store took the last commit. Before a cluster's first successful poll
  it is not ready. With replicas sharing PostgreSQL, a cluster another replica leads is
  fine, and a replica that lost the database (so leads nothing) is not ready.
  `Readiness` keeps each cluster's `ClusterProgress`: it observes the polls (an Observer,
  beside the metrics) and hears of leadership and the database from the daemon.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pvewatch.model import Event, Snapshot

BEAT_INTERVAL_SECS = 1.0
STALE_AFTER_SECS = 10.0  # no beat for this long: the loop is blocked
READY_INTERVALS = 3  # a cluster is ready while its last success is this many intervals old


class Heartbeat:
    """The event loop's sign of life. Written by the loop, read by the listener's threads
    (a float assignment is atomic, so no lock is needed)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last = clock()

    def beat(self) -> None:
        self._last = self._clock()

    def age(self) -> float:
        """Seconds since the last beat."""
        return max(0.0, self._clock() - self._last)

    async def run(self, interval_secs: float = BEAT_INTERVAL_SECS) -> None:
        """Beat every `interval_secs` until cancelled; a late beat is a blocked loop."""
        while True:
            self.beat()
            await asyncio.sleep(interval_secs)


def liveness(heartbeat_age: float, stale_after_secs: float = STALE_AFTER_SECS) -> Probe:
    ok = heartbeat_age <= stale_after_secs
    detail = f"event loop last seen {heartbeat_age:.1f} s ago"
    if not ok:
        detail += f" (blocked: more than {stale_after_secs:g} s)"
    return Probe(ok, (Check("event_loop", ok, detail),))


@dataclass(frozen=True, slots=True)
class ClusterProgress:
    """How polling one cluster goes, as far as readiness is concerned."""

    interval_secs: float
    last_success: float | None = None  # monotonic time of the last successful poll
    store_ok: bool = True  # False while the store refuses this cluster's commits
    leader: bool = True  # False while another replica polls it (replicas sharing PostgreSQL)
    database_error: str | None = None  # the leadership session is lost: why


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Probe:
    ok: bool
    checks: tuple[Check, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ok else "failing",
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
        }


class Readiness:
    """Each cluster's progress, for /readyz. Written by the event loop (the hooks), read by
    the listener's threads (`probe`), under one lock. Kept across reloads: a cluster that
    stays keeps its last success, so /readyz does not flap."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._clusters: dict[str, ClusterProgress] = {}

    def reconfigure(self, clusters: Mapping[str, float]) -> None:
        """The clusters (name → poll interval) of the config now running."""
        with self._lock:
            old = self._clusters
            self._clusters = {
                name: replace(old[name], interval_secs=interval)
                if name in old
                else ClusterProgress(interval)
                for name, interval in clusters.items()
            }

    def poll_finished(
        self,
        cluster: str,
        *,
        ok: bool,
        duration_secs: float,
        snapshot: Snapshot | None,
        events: Sequence[Event],
        error_kind: str | None,
    ) -> None:
        now = self._monotonic()
        with self._lock:
            progress = self._clusters.setdefault(cluster, ClusterProgress(60.0))
            if ok:
                progress = replace(progress, last_success=now, store_ok=True)
            elif error_kind == "store":
                progress = replace(progress, store_ok=False)
            self._clusters[cluster] = progress

    def delivery_finished(self, sink: str, *, outcome: str, duration_secs: float) -> None:
        return None  # delivery does not make pvewatch unready: its metrics tell

    def sink_enabled(self, sink: str, enabled: bool) -> None:
        return None

    def leader_changed(self, cluster: str, leading: bool) -> None:
        """This replica took (True) or gave up a cluster (replicas sharing PostgreSQL).
        A commit refused before it gave the cluster up no longer makes it unready."""
        with self._lock:
            if (progress := self._clusters.get(cluster)) is not None:
                store_ok = progress.store_ok or not leading
                self._clusters[cluster] = replace(progress, leader=leading, store_ok=store_ok)

    def database_changed(self, ok: bool, detail: str) -> None:
        """The leadership session is up, or lost: then this replica leads nothing."""
        with self._lock:
            error = None if ok else detail
            self._clusters = {
                name: replace(p, database_error=error) for name, p in self._clusters.items()
            }

    def progress(self) -> dict[str, ClusterProgress]:
        with self._lock:
            return dict(self._clusters)

    def probe(self) -> Probe:
        return readiness(self.progress(), self._monotonic())


def readiness(clusters: Mapping[str, ClusterProgress], now: float) -> Probe:
    """One check per cluster (in name order) and one for the store; `now` is monotonic."""
    checks = [_cluster_check(name, clusters[name], now) for name in sorted(clusters)]
    lost = sorted({p.database_error for p in clusters.values() if p.database_error})
    if lost:
        checks.append(Check("database", False, f"{lost[0]}; not leading any cluster"))
    # A commit refused for a cluster this replica no longer leads (the poll in flight when
    # it lost the lock) says nothing about the store; only led clusters count.
    refused = sorted(name for name, p in clusters.items() if p.leader and not p.store_ok)
    if refused:
        detail = f"the last commit failed (clusters {', '.join(refused)})"
        checks.append(Check("store", False, detail))
    else:
        checks.append(Check("store", True, "the last commit of every cluster succeeded"))
    return Probe(all(c.ok for c in checks), tuple(checks))


def _cluster_check(name: str, p: ClusterProgress, now: float) -> Check:
    what = f"cluster:{name}"
    if p.database_error is not None:
        return Check(what, False, "not polled: this replica lost the database")
    if not p.leader:
        return Check(what, True, "polled by another replica, which leads it")
    if p.last_success is None:
        return Check(what, False, "no successful poll yet")
    age = max(0.0, now - p.last_success)
    limit = READY_INTERVALS * p.interval_secs
    if age > limit:
        return Check(what, False, f"last successful poll {age:.0f} s ago (limit {limit:g} s)")
    return Check(what, True, f"last successful poll {age:.1f} s ago")
