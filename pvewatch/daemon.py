"""Builds the components from config, schedules the polls, owns signals and lifecycle.

Components start in order (store, sinks, delivery, clients, watchers, scheduler) and stop
in reverse order in one `finally`. No logic lives here beyond wiring.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from pvewatch.config import Config
from pvewatch.config.sinks import METRICS_ONLY_TYPES
from pvewatch.deliver import Deliverer, RetryPolicy, settings_for
from pvewatch.http import Listener
from pvewatch.leadership import Leadership, SoleLeader
from pvewatch.metrics import Metrics, MetricsOptions
from pvewatch.model import Event
from pvewatch.pipeline import ClusterWatcher, PollResult
from pvewatch.probes import Heartbeat
from pvewatch.pve.client import PveClient
from pvewatch.sinks import Sink, build_sink
from pvewatch.sinks.filter import route
from pvewatch.store.opening import open_state
from pvewatch.store.sqlite import SqliteStore
from pvewatch.systemd import Notifier, ServiceStatus

if TYPE_CHECKING:
    from pvewatch.store.postgres import PostgresStore

log = logging.getLogger("pvewatch")

# How long shutdown (and `once`) may spend delivering what is still pending.
FLUSH_TIMEOUT_SECS = 10.0


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    config: Config
    store: SqliteStore | PostgresStore
    sinks: list[Sink]
    deliverers: list[Deliverer]
    clients: list[PveClient]
    watchers: list[ClusterWatcher]
    metrics: Metrics
    heartbeat: Heartbeat = field(default_factory=Heartbeat)
    listener: Listener | None = None  # serving /metrics, /healthz, /readyz
    leadership: Leadership = field(default_factory=SoleLeader)

    def leader_changed(self, cluster: str, leading: bool) -> None:
        """This replica took or gave up a cluster (replicas sharing a PostgreSQL store):
        a cluster taken is polled on from what is stored; its queued events go out."""
        for watcher in self.watchers:
            if leading and watcher.cluster == cluster:
                watcher.forget()
        self.metrics.leader_changed(cluster, leading)
        self.wake_deliverers([])

    def polling(self, cluster: str) -> bool:
        """A poll of `cluster` is in flight: leadership does not change hands then."""
        return any(w.cluster == cluster and w.lock.locked() for w in self.watchers)

    def wake_deliverers(self, events: list[Event]) -> None:
        for d in self.deliverers:
            d.wake()

    async def record_sink_disabled(self, sink: str, event: Event) -> None:
        """A sink was disabled (its webhook said 410): tell the other sinks."""
        others = {s.name for s in self.sinks} - {sink}

        def to_others(e: Event) -> list[str]:
            return [name for name in route(self.config.sinks, e) if name in others]

        await asyncio.to_thread(self.store.record_events, [event], to_others)
        self.wake_deliverers([event])


@contextlib.asynccontextmanager
async def open_runtime(config: Config, *, serve_http: bool = False) -> AsyncIterator[Runtime]:
    """Start every component in order; stop them in reverse order, whatever happens.
    `serve_http` starts the listener of `config.http` too (last, so it stops first)."""
    async with contextlib.AsyncExitStack() as stack:
        store, leadership = open_state(
            config.store,
            [c.name for c in config.clusters],
            on_change=lambda cluster, leading: runtime.leader_changed(cluster, leading),
            on_database=lambda ok, detail: runtime.metrics.database_changed(ok, detail),
            busy=lambda cluster: runtime.polling(cluster),
            logger=log,
        )
        stack.callback(store.close)
        stack.push_async_callback(leadership.stop)  # after the last poll and delivery
        # A prometheus sink only shapes /metrics: no Sink object, no outbox rows.
        delivered = [s for s in config.sinks if s.type not in METRICS_ONLY_TYPES]
        sinks: list[Sink] = []
        for sink_config in delivered:
            sink = build_sink(sink_config)
            stack.push_async_callback(sink.aclose)
            sinks.append(sink)
        metrics = Metrics(
            clusters={c.name: c.interval_secs for c in config.clusters},
            sinks=[s.name for s in sinks],
            store=store,
            options=MetricsOptions.from_sinks(config.sinks),
        )
        for sink in sinks:
            metrics.sink_enabled(sink.name, True)
        rng = random.Random()
        runtime = Runtime(config, store, sinks, [], [], [], metrics, leadership=leadership)
        deliverers = [
            Deliverer(
                store,
                sink,
                policy=RetryPolicy.from_config(sink_config.delivery.retry),
                settings=settings_for(sink_config, sink),
                clock=utcnow,
                rng=rng,
                logger=log,
                observer=metrics,
                on_disabled=runtime.record_sink_disabled,
                clusters=leadership.delivered,
            )
            for sink_config, sink in zip(delivered, sinks, strict=True)
        ]
        for deliverer in deliverers:
            stack.push_async_callback(deliverer.stop)  # before its sink closes
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
                observer=metrics,
            )
            for cluster, client in zip(config.clusters, clients, strict=True)
        ]
        # This replica's first share of the clusters before the first polls; then a look
        # every few seconds (PostgreSQL; with SQLite it leads everything, always).
        for cluster in config.clusters:
            metrics.leader_changed(cluster.name, leadership.leads(cluster.name))
        await leadership.look()
        stack.push_async_callback(_cancel, asyncio.create_task(leadership.run()))
        if serve_http and config.http.listen is not None:
            runtime.listener = Listener(
                config.http, metrics=metrics, heartbeat=runtime.heartbeat, logger=log
            )
            runtime.listener.start()
            stack.callback(runtime.listener.close)
        yield runtime


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _flush(runtime: Runtime) -> bool:
    results = await asyncio.gather(*(d.drain(FLUSH_TIMEOUT_SECS) for d in runtime.deliverers))
    return all(results)


async def run(
    config: Config,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[], None] = lambda: None,
    on_listening: Callable[[str], None] = lambda url: None,
) -> int:
    """`pvewatch run`: poll every cluster on its interval until SIGTERM/SIGINT or `stop`.
    `on_listening` gets the listener's URL (its real port when http.listen asks for 0)."""
    stop = stop or asyncio.Event()
    notifier = Notifier.from_env(os.environ, logger=log)
    status = ServiceStatus([c.name for c in config.clusters])
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    async with open_runtime(config, serve_http=True) as runtime:
        if runtime.listener is not None:
            on_listening(runtime.listener.url)
        # The heartbeat tells /healthz that this loop is not blocked.
        background = [asyncio.create_task(runtime.heartbeat.run())]
        background += [asyncio.create_task(d.run()) for d in runtime.deliverers]
        scheduler = AsyncIOScheduler(event_loop=loop, timezone=UTC)
        for cluster, watcher in zip(config.clusters, runtime.watchers, strict=True):
            scheduler.add_job(
                _poll_and_report,
                "interval",
                args=(watcher, status, notifier),
                seconds=cluster.interval_secs,
                jitter=min(1.0, cluster.interval_secs / 10),
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(1, int(cluster.interval_secs)),
                next_run_time=utcnow(),
                id=f"poll:{cluster.name}",
            )
        scheduler.add_job(
            _prune, "interval", hours=1, args=(runtime,), next_run_time=utcnow(), id="prune"
        )
        scheduler.start()
        log.info("watching %d cluster(s)", len(config.clusters))
        # Ready once the config is loaded and the listener bound; the polls come after.
        notifier.ready(status.line())
        watchdog = asyncio.create_task(notifier.keep_watchdog_fed())
        on_ready()
        try:
            await stop.wait()
            log.info("stopping: finishing in-flight polls and flushing deliveries")
            notifier.stopping("stopping: finishing in-flight polls and flushing deliveries")
            scheduler.pause()
            for watcher in runtime.watchers:
                await watcher.close()
            scheduler.shutdown(wait=False)
            if not await _flush(runtime):
                log.warning("stopping with undelivered events; they stay queued for next start")
        finally:
            watchdog.cancel()
            for d in runtime.deliverers:
                await d.stop()
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
    log.info("stopped")
    return 0


async def _poll_and_report(
    watcher: ClusterWatcher, status: ServiceStatus, notifier: Notifier
) -> None:
    """One scheduled poll, then the one-line state for `systemctl status`."""
    result = await watcher.poll()
    if result.standby:  # another replica leads the cluster
        return
    status.poll_finished(
        watcher.cluster, ok=result.ok, resources=result.resources, error_kind=result.error_kind
    )
    notifier.status(status.line())


async def _prune(runtime: Runtime) -> None:
    deleted = await asyncio.to_thread(
        runtime.store.prune, utcnow(), runtime.config.store.retention_days
    )
    if deleted:
        log.info("pruned %d old rows from the store", deleted)


async def once(config: Config) -> int:
    """`pvewatch once`: poll every cluster once, deliver what is pending, exit.
    0 when every cluster was polled, 1 otherwise."""
    async with open_runtime(config) as runtime:
        results: list[PollResult] = await asyncio.gather(*(w.poll() for w in runtime.watchers))
        for cluster, result in zip(config.clusters, results, strict=True):
            if result.standby:
                log.warning("cluster %s is led by another replica: not polled", cluster.name)
            if not result.ok:
                log.error("cluster %s could not be polled: %s", cluster.name, result.error)
        flushed = await _flush(runtime)
        if not flushed:
            log.warning("some events could not be delivered yet; they stay queued")
    return 0 if all(r.ok for r in results) else 1
