"""The running components of one config, built and started in order (store, sinks,
delivery, clients, watchers, leadership, listener) and stopped in reverse order in one
`finally`: `open_runtime`. No logic lives here beyond wiring; `daemon` runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pvewatch.checking import CheckResult, CheckRunner
from pvewatch.config.types import Config
from pvewatch.deliver.deliverer import Deliverer
from pvewatch.deliver.policy import RetryPolicy
from pvewatch.deliver.settings import settings_for
from pvewatch.http.listener import Listener
from pvewatch.http.notify import Inbox, Target
from pvewatch.http.page import read_routes
from pvewatch.http.view import ReadView, Source
from pvewatch.lifecycle.heap import HeapFreezer
from pvewatch.model import Event
from pvewatch.observability.metrics import Metrics, MetricsOptions
from pvewatch.observability.observe import Observers
from pvewatch.observability.probes import Heartbeat, Readiness
from pvewatch.pipeline import ClusterWatcher, PollResult
from pvewatch.pve.client import PveClient
from pvewatch.routing import route
from pvewatch.sinks.base import OpenSink, SinkContext, SinkTypes, delivering
from pvewatch.sinks.table import SINK_TYPES
from pvewatch.store.base import Store
from pvewatch.store.leadership import Leadership, SoleLeader
from pvewatch.store.opening import open_state

log = logging.getLogger("pvewatch")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    config: Config
    store: Store
    sinks: list[OpenSink]
    deliverers: list[Deliverer]
    clients: list[PveClient]
    watchers: list[ClusterWatcher]
    metrics: Metrics
    readiness: Readiness = field(default_factory=Readiness)
    heartbeat: Heartbeat = field(default_factory=Heartbeat)
    listener: Listener | None = None  # serving /metrics, /healthz, /readyz
    leadership: Leadership = field(default_factory=SoleLeader)
    # Set once the first share is taken: a cluster taken over later is polled at once.
    poll_on_takeover: bool = False
    takeover_polls: set[asyncio.Task[PollResult]] = field(default_factory=set)
    checks: list[CheckRunner] = field(default_factory=list)  # the health checks beside the polls

    def read_source(self) -> Source:
        """What the read API and the status page read while this runtime runs; writes
        (silences) only when the listener asks for a password."""
        return Source(
            self.store,
            clusters=[c.name for c in self.config.clusters],
            sinks=[s.config.name for s in self.sinks],
            writable=bool(self.config.http.basic_auth_users),
        )

    def leader_changed(self, cluster: str, leading: bool) -> None:
        """This replica took or gave up a cluster (replicas sharing a PostgreSQL store):
        a cluster taken is polled on from what is stored, at once rather than at the next
        tick of its interval; its queued events go out."""
        for watcher in self.watchers:
            if leading and watcher.cluster == cluster:
                watcher.forget()
                if self.poll_on_takeover:
                    task = asyncio.get_running_loop().create_task(watcher.poll())
                    self.takeover_polls.add(task)
                    task.add_done_callback(self.takeover_polls.discard)
        self.metrics.leader_changed(cluster, leading)
        self.readiness.leader_changed(cluster, leading)
        self.wake_deliverers([])

    def polling(self, cluster: str) -> bool:
        """A poll of `cluster` is in flight: leadership does not change hands then."""
        polls = (w.lock.locked() for w in self.watchers if w.cluster == cluster)
        checks = (c.lock.locked() for c in self.checks if c.cluster == cluster)
        return any(polls) or any(checks)

    def check_finished(self, cluster: str, name: str, result: CheckResult) -> None:
        self.metrics.checks.check_finished(
            cluster, name, result.status, result.requests, result.gauges
        )

    def wake_deliverers(self, events: list[Event]) -> None:
        for d in self.deliverers:
            d.wake()

    async def record_sink_disabled(self, sink: str, event: Event) -> None:
        """A sink was disabled (its webhook said 410): tell the other sinks."""
        others = {s.config.name for s in self.sinks} - {sink}

        def to_others(e: Event) -> list[str]:
            return [name for name in route(self.config.sinks, e) if name in others]

        await asyncio.to_thread(self.store.record_events, [event], to_others)
        self.wake_deliverers([event])


@contextlib.asynccontextmanager
async def open_runtime(
    config: Config,
    *,
    serve_http: bool = False,
    metrics: Metrics | None = None,
    readiness: Readiness | None = None,
    resumed: bool = False,
    sink_types: SinkTypes = SINK_TYPES,
    inbox: Inbox | None = None,
    heap: HeapFreezer | None = None,
) -> AsyncIterator[Runtime]:
    """Start every component in order; stop them in reverse order, whatever happens.
    `serve_http` starts the listener of `config.http` too (last, so it stops first).
    A reload passes the `metrics` and `readiness` to carry on with and `resumed` (see
    ClusterWatcher).
    `sink_types`: the table the config's sinks were read with. `inbox`: where the
    listener receives PVE's notifications (the daemon's, kept across reloads); the
    runtime records them while it runs. `heap`: told of every poll, to freeze the heap
    (lifecycle/heap.py)."""
    for warning in config.warnings:  # at each start and reload, as check-config prints them
        log.warning("config: %s", warning)
    async with contextlib.AsyncExitStack() as stack:
        # Backup servers are led too (PostgreSQL replicas): one replica delivers the
        # notifications of each, whichever replica received them.
        led = [c.name for c in config.clusters] + [b.name for b in config.backup_servers]
        store, leadership = open_state(
            config.store,
            led,
            on_change=lambda cluster, leading: runtime.leader_changed(cluster, leading),
            on_database=lambda ok, detail: runtime.readiness.database_changed(ok, detail),
            busy=lambda cluster: runtime.polling(cluster),
            logger=log,
        )
        stack.callback(store.close)
        stack.push_async_callback(leadership.stop)  # after the last poll and delivery
        # A metrics-only sink (prometheus) shapes /metrics: no Sink, no outbox rows.
        delivered = delivering(config.sinks, sink_types)
        sinks: list[OpenSink] = []
        configured = frozenset(c.name for c in config.clusters)

        def kept() -> frozenset[str]:  # the clusters whose state sinks may mirror
            led = leadership.delivered()
            return configured if led is None else configured & led

        for sink_config in delivered:
            opened = sink_types[sink_config.type].open(sink_config, SinkContext(store, kept))
            stack.push_async_callback(opened.sink.aclose)
            if opened.run is not None:  # cancelled before the sink closes
                stack.push_async_callback(_cancel, asyncio.create_task(opened.run()))
            sinks.append(opened)
        metrics = metrics or Metrics(clusters={}, sinks=())
        readiness = readiness or Readiness()
        readiness.reconfigure({c.name: c.interval_secs for c in config.clusters})
        metrics.reconfigure(
            clusters={c.name: c.interval_secs for c in config.clusters},
            sinks=[s.config.name for s in sinks],
            store=store,
            options=MetricsOptions.from_sinks(config.sinks),
        )
        rng = random.Random()
        runtime = Runtime(
            config, store, sinks, [], [], [], metrics, readiness, leadership=leadership
        )
        observer = Observers(metrics, readiness, *([heap] if heap is not None else []))
        deliverers = [
            Deliverer(
                store,
                opened.sink,
                policy=RetryPolicy.from_config(opened.config.delivery.retry),
                settings=settings_for(opened),
                clock=utcnow,
                rng=rng,
                logger=log,
                observer=observer,
                on_disabled=runtime.record_sink_disabled,
                clusters=leadership.delivered,
            )
            for opened in sinks
        ]
        for deliverer in deliverers:
            stack.push_async_callback(deliverer.stop)  # before its sink closes
        for opened in sinks:
            metrics.sink_enabled(opened.config.name, True)
        clients = []
        for cluster in config.clusters:
            client = PveClient(cluster, logger=log)
            stack.push_async_callback(client.aclose)
            clients.append(client)
        runtime.deliverers, runtime.clients = deliverers, clients
        runtime.watchers = [
            ClusterWatcher(
                cluster=cluster.name,
                interval_secs=cluster.interval_secs,
                failure_threshold=cluster.source_failure_threshold,
                source=client,
                store=store,
                sinks=functools.partial(route, delivered),
                clock=utcnow,
                on_commit=runtime.wake_deliverers,
                leading=functools.partial(leadership.leads, cluster.name),
                rules=config.rules,
                logger=log,
                observer=observer,
                resumed=resumed,
            )
            for cluster, client in zip(config.clusters, clients, strict=True)
        ]
        runtime.checks = [
            CheckRunner(
                cluster=cluster.name,
                check=check,
                source=client,
                store=store,
                sinks=functools.partial(route, delivered),
                clock=utcnow,
                snapshot=lambda w=watcher: w.snapshot,  # type: ignore[misc]
                task_rows=lambda w=watcher: w.task_rows,  # type: ignore[misc]
                rules=config.rules,
                leading=functools.partial(leadership.leads, cluster.name),
                on_commit=runtime.wake_deliverers,
                on_run=runtime.check_finished,
                logger=log,
                resumed=resumed,
            )
            for cluster, client, watcher in zip(
                config.clusters, clients, runtime.watchers, strict=True
            )
            for check in cluster.checks
        ]
        metrics.checks.forget((r.cluster, r.name) for r in runtime.checks)
        # This replica's first share of the clusters before the first polls; then a look
        # every few seconds (PostgreSQL; with SQLite it leads everything, always).
        for cluster in config.clusters:
            metrics.leader_changed(cluster.name, leadership.leads(cluster.name))
            readiness.leader_changed(cluster.name, leadership.leads(cluster.name))
        await leadership.look()
        runtime.poll_on_takeover = True
        stack.push_async_callback(_cancel, asyncio.create_task(leadership.run()))
        if serve_http and config.http.listen is not None:
            inbox = inbox or Inbox(log)
            runtime.listener = Listener(
                config.http,
                metrics=metrics,
                readiness=readiness,
                heartbeat=runtime.heartbeat,
                logger=log,
                routes=(inbox.route(), *read_routes(ReadView(runtime.read_source()), log)),
            )
            runtime.listener.start()
            stack.callback(runtime.listener.close)
        if inbox is not None:
            loop = asyncio.get_running_loop()

            def committed(events: list[Event]) -> None:  # on the listener's thread
                loop.call_soon_threadsafe(runtime.wake_deliverers, events)

            target = Target(
                config,
                store,
                functools.partial(route, delivered),
                metrics,
                utcnow,
                committed,
            )
            inbox.attach(target)
            stack.callback(inbox.detach, target)  # first thing on the way out
        yield runtime


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
