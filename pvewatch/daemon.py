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
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from pvewatch.config import Config
from pvewatch.deliver import Deliverer, RetryPolicy
from pvewatch.errors import StoreError
from pvewatch.model import Event
from pvewatch.pipeline import ClusterWatcher, PollResult
from pvewatch.pve.client import PveClient
from pvewatch.sinks import Sink, build_sink
from pvewatch.sinks.filter import route
from pvewatch.store.sqlite import SqliteStore
from pvewatch.systemd import Notifier, ServiceStatus

log = logging.getLogger("pvewatch")

# How long shutdown (and `once`) may spend delivering what is still pending.
FLUSH_TIMEOUT_SECS = 10.0


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    config: Config
    store: SqliteStore
    sinks: list[Sink]
    deliverers: list[Deliverer]
    clients: list[PveClient]
    watchers: list[ClusterWatcher]

    def wake_deliverers(self, events: list[Event]) -> None:
        for d in self.deliverers:
            d.wake()


@contextlib.asynccontextmanager
async def open_runtime(config: Config) -> AsyncIterator[Runtime]:
    """Start every component in order; stop them in reverse order, whatever happens."""
    async with contextlib.AsyncExitStack() as stack:
        try:
            config.store.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # said like the store's own errors: a message, not a traceback
            where = f"state store {config.store.path}"
            raise StoreError(f"{where}: cannot create its directory: {e.strerror or e}") from None
        store = SqliteStore(config.store.path)
        stack.callback(store.close)
        sinks: list[Sink] = []
        for sink_config in config.sinks:
            sink = build_sink(sink_config)
            stack.push_async_callback(sink.aclose)
            sinks.append(sink)
        rng = random.Random()
        deliverers = [
            Deliverer(store, sink, policy=RetryPolicy(), clock=utcnow, rng=rng, logger=log)
            for sink in sinks
        ]
        clients = []
        for cluster in config.clusters:
            client = PveClient(cluster, logger=log)
            stack.push_async_callback(client.aclose)
            clients.append(client)
        runtime = Runtime(config, store, sinks, deliverers, clients, [])
        runtime.watchers = [
            ClusterWatcher(
                cluster=cluster.name,
                interval_secs=cluster.interval_secs,
                failure_threshold=cluster.source_failure_threshold,
                source=client,
                store=store,
                sinks=functools.partial(route, config.sinks),
                clock=utcnow,
                on_commit=runtime.wake_deliverers,
                logger=log,
            )
            for cluster, client in zip(config.clusters, clients, strict=True)
        ]
        yield runtime


async def _flush(runtime: Runtime) -> bool:
    results = await asyncio.gather(*(d.drain(FLUSH_TIMEOUT_SECS) for d in runtime.deliverers))
    return all(results)


async def run(
    config: Config,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[], None] = lambda: None,
) -> int:
    """`pvewatch run`: poll every cluster on its interval until SIGTERM/SIGINT or `stop`."""
    stop = stop or asyncio.Event()
    notifier = Notifier.from_env(os.environ, logger=log)
    status = ServiceStatus([c.name for c in config.clusters])
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    async with open_runtime(config) as runtime:
        delivery = [asyncio.create_task(d.run()) for d in runtime.deliverers]
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
            for task in delivery:
                task.cancel()
            await asyncio.gather(*delivery, return_exceptions=True)
    log.info("stopped")
    return 0


async def _poll_and_report(
    watcher: ClusterWatcher, status: ServiceStatus, notifier: Notifier
) -> None:
    """One scheduled poll, then the one-line state for `systemctl status`."""
    result = await watcher.poll()
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
            if not result.ok:
                log.error("cluster %s could not be polled: %s", cluster.name, result.error)
        flushed = await _flush(runtime)
        if not flushed:
            log.warning("some events could not be delivered yet; they stay queued")
    return 0 if all(r.ok for r in results) else 1
