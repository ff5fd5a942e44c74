"""The Prometheus metrics: what pvewatch watches and how its own pipeline is doing.

`Metrics` is the pipeline's `Observer` (polls, deliveries, sinks) and, with the health
checks' collector (`check_metrics`), the only module that imports prometheus_client.
Series are built at scrape time by custom collectors on a
registry of its own (never the global one), so there are no `*_created` series, and the
series of a resource that went away disappear with it. Per resource nothing is kept but
the cluster's last committed snapshot and the time of its last change event.

The state series (`pvewatch_resource_*`, `pvewatch_cluster_*`; labels in
`pvewatch.observability.series`) are most of a scrape (two per resource) and change only when a poll
sees a change, so their encoded text is kept until then: scraping a 10,000-guest cluster
then costs little, however many Prometheus servers ask. The pipeline series
(`pvewatch_polls_total`, ... ; README "Metrics") and the process_* / python_* series of
prometheus_client are built anew on every scrape.

Thread-safe: the observer hooks run on the event loop, scrapes on the listener's worker thread.
A scrape copies references under the lock and encodes outside it, so a poll never waits
for a scrape.

Over 350 lines: the whole Prometheus exposition, in the one module that imports
prometheus_client.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from pvewatch import __version__
from pvewatch.config.types import SinkConfig
from pvewatch.errors import StoreError
from pvewatch.model import Event, Snapshot
from pvewatch.observability.check_metrics import CheckMetrics
from pvewatch.observability.series import (
    RESOURCE_LABELS,
    Histogram,
    info_labels,
    resource_labels,
    up_value,
)
from pvewatch.routing import route
from pvewatch.sinks.prometheus import PrometheusOptions

POLL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
DELIVERY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
OUTCOMES = ("delivered", "retry", "dead")
OUTBOX_CACHE_SECS = 1.0  # scrapes in a burst (several Prometheus servers) count once
_OPENMETRICS_EOF = b"# EOF\n"


class OutboxCounts(Protocol):
    """The part of the store the metrics read (cheap COUNT queries)."""

    def pending_count(self, sink: str) -> int: ...
    def dead_count(self, sink: str) -> int: ...


@dataclass(frozen=True, slots=True)
class MetricsOptions:
    """What the `type: prometheus` sinks of the config ask for. Without one: everything."""

    state_metrics: bool = True
    # The prometheus sinks; an event is counted when one of them would receive it (their
    # `filter`). Empty: every event is counted.
    counting: tuple[SinkConfig, ...] = ()

    @classmethod
    def from_sinks(cls, sinks: Iterable[SinkConfig]) -> MetricsOptions:
        mine = [(s, s.options) for s in sinks if isinstance(s.options, PrometheusOptions)]
        if not mine:
            return cls()
        return cls(any(o.state_metrics for _, o in mine), tuple(s for s, _ in mine))

    def counts(self, event: Event) -> bool:
        return not self.counting or bool(route(self.counting, event))


@dataclass(slots=True)
class _ClusterState:
    leader: bool = True  # False while another replica polls it (replicas sharing PostgreSQL)
    snapshot: Snapshot | None = None
    last_success_time: float = 0.0  # wall clock; 0 = never
    source_up: bool | None = None  # None until the first poll ends
    last_change: dict[str, float] = field(default_factory=dict)  # resource id → wall time
    durations: Histogram = field(default_factory=lambda: Histogram(POLL_BUCKETS))


class Metrics:
    """The Observer behind /metrics (/readyz: pvewatch.observability.probes.Readiness)."""

    def __init__(
        self,
        *,
        clusters: Collection[str],
        sinks: Sequence[str],
        store: OutboxCounts | None = None,
        options: MetricsOptions | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`clusters`: the cluster names; `sinks`: the delivering sinks."""
        self.monotonic = monotonic
        self._clock = clock
        self._lock = threading.Lock()
        self._options = MetricsOptions()
        self._store: OutboxCounts | None = None
        self._clusters: dict[str, _ClusterState] = {}
        self._sinks: tuple[str, ...] = ()
        self._polls: Counter[tuple[str, str]] = Counter()
        self._events: Counter[tuple[str, str, str]] = Counter()
        self._deliveries: Counter[tuple[str, str]] = Counter()
        self._delivery_durations: dict[str, Histogram] = {}
        self._enabled: dict[str, bool] = {}
        self._notifications_dropped = 0
        # Notifications PVE and PBS pushed (source, type, result): POST /notify/<name>.
        self._received: Counter[tuple[str, str, str]] = Counter()
        # The last (re)load of the config: did it succeed, and when did one last succeed.
        self._reload_ok, self._reload_time = True, clock()
        self._cache_lock = threading.Lock()
        # content type → (what the state series showed, their encoded text)
        self._encoded_state: dict[str, tuple[dict[str, Any], bytes]] = {}
        self._outbox: tuple[float, dict[str, tuple[int, int]]] | None = None
        self.reconfigure(clusters=clusters, sinks=sinks, store=store, options=options)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Pipeline(self))
        self.checks = CheckMetrics(clock)
        self.registry.register(self.checks)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def reconfigure(
        self,
        *,
        clusters: Collection[str],
        sinks: Sequence[str],
        store: OutboxCounts | None,
        options: MetricsOptions | None = None,
    ) -> None:
        """Follow a reloaded config on the same registry: the series of clusters and sinks
        that are gone disappear, the others carry on (counters keep counting, /readyz
        keeps each cluster's last success, with its new interval)."""
        options = options or MetricsOptions()
        with self._lock:
            self._options, self._store, self._sinks = options, store, tuple(sinks)
            old = self._clusters
            self._clusters = {n: _carried(old.get(n), options) for n in clusters}
            polls = {k: n for k, n in self._polls.items() if k[0] in clusters}
            self._polls = Counter({(c, "success"): 0 for c in clusters} | polls)
            self._events = Counter({k: n for k, n in self._events.items() if k[0] in clusters})
            deliveries = {k: n for k, n in self._deliveries.items() if k[0] in self._sinks}
            self._deliveries = Counter(
                {(s, o): 0 for s in self._sinks for o in OUTCOMES} | deliveries
            )
            self._delivery_durations = {
                s: self._delivery_durations.get(s) or Histogram(DELIVERY_BUCKETS)
                for s in self._sinks
            }
            self._enabled = {s: on for s, on in self._enabled.items() if s in self._sinks}
        with self._cache_lock:
            self._outbox = None  # counted for the old sinks, maybe in another store

    def config_reloaded(self, ok: bool) -> None:
        """A reload was applied (`ok`) or rejected: the old config keeps running."""
        with self._lock:
            self._reload_ok = ok
            if ok:
                self._reload_time = self._clock()

    # --- the Observer ---------------------------------------------------------------

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
        result = "success" if ok else (error_kind or "error")
        counted = [(e.type, e.severity.value) for e in events if self._options.counts(e)]
        changed = [(e.resource.id, e.time.timestamp()) for e in events if e.resource]
        now_wall = self._clock()
        with self._lock:
            state = self._clusters.setdefault(cluster, _ClusterState())
            self._polls[(cluster, result)] += 1
            state.durations.observe(duration_secs)
            self._events.update((cluster, t, s) for t, s in counted)
            if ok:
                state.last_success_time = now_wall
                state.source_up = True
                if snapshot is not None and self._options.state_metrics:
                    state.snapshot = snapshot
            elif error_kind != "store":
                state.source_up = False
            _note_changes(state, changed)

    def delivery_finished(self, sink: str, *, outcome: str, duration_secs: float) -> None:
        with self._lock:
            self._deliveries[(sink, outcome)] += 1
            durations = self._delivery_durations.setdefault(sink, Histogram(DELIVERY_BUCKETS))
            durations.observe(duration_secs)

    def notification_dropped(self) -> None:
        """A systemd notification found the notify socket full and was not sent."""
        with self._lock:
            self._notifications_dropped += 1

    def events_recorded(self, events: Sequence[Event]) -> None:
        """Events recorded outside a poll (a notification): counted as a poll's are."""
        counted = [(e.cluster, e.type, e.severity.value) for e in events if self._options.counts(e)]
        with self._lock:
            self._events.update(counted)

    def notification_received(self, source: str, type_: str, result: str) -> None:
        """A notification was posted to /notify/<name> (pvewatch.http.notify): `source`
        pve, pbs or unknown; `type_` its fields.type (bounded); `result` what came of it."""
        with self._lock:
            self._received[(source, type_, result)] += 1

    def sink_enabled(self, sink: str, enabled: bool) -> None:
        with self._lock:
            self._enabled[sink] = enabled

    def leader_changed(self, cluster: str, leading: bool) -> None:
        """This replica took (True) or gave up a cluster (replicas sharing PostgreSQL)."""
        with self._lock:
            if (state := self._clusters.get(cluster)) is not None:
                state.leader = leading

    def _leaders(self) -> dict[tuple[str], float]:
        with self._lock:
            return {(n,): float(s.leader) for n, s in self._clusters.items()}

    # --- what the listener asks -----------------------------------------------------

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """The exposition the Accept header asks for (OpenMetrics or text) and its type."""
        encoder, content_type = choose_encoder(accept or "")
        state = self._state_text(encoder, content_type)
        if content_type.startswith("application/openmetrics-text"):
            state = state.removesuffix(_OPENMETRICS_EOF)  # one EOF, at the very end
        return state + encoder(self.registry), content_type

    # --- the collectors -------------------------------------------------------------

    def _state_text(self, encoder: Callable[[Any], bytes], content_type: str) -> bytes:
        """The state series, encoded again only when what they show changed. Each poll
        commits a new snapshot, mostly equal to the last: comparing them costs a few ms
        for 10,000 resources, here on the scrape's thread; encoding costs 100 times more."""
        with self._lock:
            clusters = {
                name: (s.snapshot, dict(s.last_change)) for name, s in self._clusters.items()
            }
        shown = {
            name: (snap.resources, snap.quorate, changes)
            for name, (snap, changes) in clusters.items()
            if snap is not None
        }
        with self._cache_lock:
            cached = self._encoded_state.get(content_type)
        if cached is not None and cached[0] == shown:
            return cached[1]
        text = encoder(_Families(list(_state_families(clusters))))
        with self._cache_lock:
            self._encoded_state[content_type] = (shown, text)
        return text

    def collect_pipeline(self) -> Iterator[Metric]:
        with self._lock:
            seen = _Seen(
                last_success={(n,): c.last_success_time for n, c in self._clusters.items()},
                source_up={
                    (n,): float(c.source_up)
                    for n, c in self._clusters.items()
                    if c.source_up is not None
                },
                polls=dict(self._polls),
                poll_durations={n: c.durations.copy() for n, c in self._clusters.items()},
                events=dict(self._events),
                deliveries=dict(self._deliveries),
                delivery_durations={s: h.copy() for s, h in self._delivery_durations.items()},
                enabled={(s,): float(on) for s, on in self._enabled.items()},
                reload=(float(self._reload_ok), self._reload_time),
            )
            dropped = self._notifications_dropped
            received = dict(self._received)
        yield from _pipeline_families(seen)
        yield _counter(
            "notifications_received",
            "Notifications PVE and PBS posted to /notify/<name>, by result",
            ("source", "type", "result"),
            received,
        )
        yield CounterMetricFamily(
            "pvewatch_systemd_notifications_dropped",
            "systemd notifications (STATUS=, WATCHDOG=1, ...) not sent: the socket was full",
            value=dropped,
        )
        yield _gauge(
            "pvewatch_cluster_leader",
            "1 if this replica polls the cluster (it leads it), 0 if another one does",
            self._leaders(),
            label="cluster",
        )
        pending, dead = self._outbox_counts()
        yield _gauge("pvewatch_outbox_pending", "Events waiting to be delivered", pending)
        yield _gauge("pvewatch_dead_letters", "Events given up on", dead)

    def _outbox_counts(self) -> tuple[dict[tuple[str], float], dict[tuple[str], float]]:
        with self._cache_lock:
            now = self.monotonic()
            if self._outbox is None or now - self._outbox[0] >= OUTBOX_CACHE_SECS:
                self._outbox = (now, self._count_outbox())
            counts = self._outbox[1]
        pending = {(s,): float(p) for s, (p, _) in counts.items()}
        return pending, {(s,): float(d) for s, (_, d) in counts.items()}

    def _count_outbox(self) -> dict[str, tuple[int, int]]:
        if self._store is None:
            return {}
        try:
            return {
                s: (self._store.pending_count(s), self._store.dead_count(s)) for s in self._sinks
            }
        except StoreError:
            return {}  # closed or busy: the series are absent for this scrape


class _Pipeline(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics.collect_pipeline()


class _Families(Collector):
    """Families already built, for an encoder (which only calls `collect`)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def _carried(state: _ClusterState | None, options: MetricsOptions) -> _ClusterState:
    """A cluster's state after a reload: kept, or a new one."""
    if state is None:
        return _ClusterState()
    if not options.state_metrics:
        state.snapshot = None
    return state


def _note_changes(state: _ClusterState, changed: list[tuple[str, float]]) -> None:
    """Remember when each resource last changed; forget resources that are gone."""
    snapshot = state.snapshot
    if snapshot is None:
        return
    for rid, at in changed:
        if rid in snapshot.resources:
            state.last_change[rid] = at
    gone = [rid for rid in state.last_change if rid not in snapshot.resources]
    for rid in gone:
        del state.last_change[rid]


def _state_families(
    clusters: Mapping[str, tuple[Snapshot | None, Mapping[str, float]]],
) -> Iterator[Metric]:
    up = GaugeMetricFamily(
        "pvewatch_resource_up",
        "1 if the resource is running / online / available / ok, else 0",
        labels=RESOURCE_LABELS,
    )
    info = InfoMetricFamily("pvewatch_resource", "Labels of a resource", labels=RESOURCE_LABELS)
    changed = GaugeMetricFamily(
        "pvewatch_resource_last_change_timestamp_seconds",
        "Unix time of the resource's last change event since pvewatch started",
        labels=RESOURCE_LABELS,
    )
    quorate = GaugeMetricFamily(
        "pvewatch_cluster_quorate", "1 if the cluster has quorum, 0 if not", labels=("cluster",)
    )
    online = GaugeMetricFamily(
        "pvewatch_cluster_nodes_online", "Nodes whose status is online", labels=("cluster",)
    )
    for name, (snapshot, last_change) in sorted(clusters.items()):
        if snapshot is None:
            continue
        nodes = 0
        for r in snapshot.resources.values():
            labels = resource_labels(name, r)
            if (value := up_value(r)) is not None:
                up.add_metric(labels, value)
            info.add_metric(labels, info_labels(r))
            if (at := last_change.get(r.id)) is not None:
                changed.add_metric(labels, at)
            if r.type == "node" and r.status == "online":
                nodes += 1
        if snapshot.quorate is not None:
            quorate.add_metric([name], float(snapshot.quorate))
        online.add_metric([name], float(nodes))
    return iter((up, info, changed, quorate, online))


@dataclass(frozen=True, slots=True)
class _Seen:
    """The pipeline's figures for one scrape, copied under the lock."""

    last_success: dict[tuple[str], float]
    source_up: dict[tuple[str], float]
    polls: dict[tuple[str, str], int]
    poll_durations: dict[str, Histogram]
    events: dict[tuple[str, str, str], int]
    deliveries: dict[tuple[str, str], int]
    delivery_durations: dict[str, Histogram]
    enabled: dict[tuple[str], float]
    reload: tuple[float, float]  # the last config reload: succeeded (1/0), last success time


def _pipeline_families(seen: _Seen) -> Iterator[Metric]:
    yield _counter("polls", "Polls of a cluster by result", ("cluster", "result"), seen.polls)
    yield _histogram(
        "pvewatch_poll_duration_seconds", "Duration of one poll", "cluster", seen.poll_durations
    )
    yield _gauge(
        "pvewatch_last_successful_poll_timestamp_seconds",
        "Unix time of the cluster's last successful poll (0: none since start)",
        seen.last_success,
        label="cluster",
    )
    yield _gauge(
        "pvewatch_source_up",
        "1 if the last poll of the cluster's API succeeded, 0 if it failed",
        seen.source_up,
        label="cluster",
    )
    yield _counter("events", "Events detected", ("cluster", "type", "severity"), seen.events)
    yield _counter(
        "deliveries", "Delivery attempts by outcome", ("sink", "outcome"), seen.deliveries
    )
    yield _histogram(
        "pvewatch_delivery_duration_seconds",
        "Duration of one delivery attempt",
        "sink",
        seen.delivery_durations,
    )
    yield _gauge(
        "pvewatch_sink_enabled", "1 if the sink receives events, 0 if it was disabled", seen.enabled
    )
    ok, at = seen.reload
    yield GaugeMetricFamily(
        "pvewatch_config_last_reload_successful",
        "1 if the last config (re)load was applied, 0 if it was rejected",
        value=ok,
    )
    yield GaugeMetricFamily(
        "pvewatch_config_last_reload_success_timestamp_seconds",
        "Unix time of the last config (re)load that was applied",
        value=at,
    )
    build = InfoMetricFamily("pvewatch_build", "The running pvewatch", labels=())
    build.add_metric([], {"version": __version__})
    yield build


def _counter(name: str, doc: str, labels: Sequence[str], values: Mapping[Any, float]) -> Metric:
    """`values`: label values (a tuple, in `labels` order) → count."""
    family = CounterMetricFamily(f"pvewatch_{name}", doc, labels=labels)
    for key in sorted(values):
        family.add_metric(list(key), values[key])
    return family


def _gauge(name: str, doc: str, values: Mapping[tuple[str], float], label: str = "sink") -> Metric:
    family = GaugeMetricFamily(name, doc, labels=(label,))
    for key in sorted(values):
        family.add_metric(list(key), values[key])
    return family


def _histogram(name: str, doc: str, label: str, values: Mapping[str, Histogram]) -> Metric:
    family = HistogramMetricFamily(name, doc, labels=(label,))
    for key in sorted(values):
        family.add_metric([key], values[key].buckets(), values[key].total)
    return family
