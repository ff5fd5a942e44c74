"""`pvewatch run` and `once`: the runtime of the config (`runtime.open_runtime`), the
polls on a schedule (apscheduler lives here), signals, reloads and a clean stop.

A stop finishes the polls in flight and flushes what is pending for a while; a reload
(SIGHUP) starts the new config's runtime after the old one stopped, and goes back to the
old config when the new one cannot start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from pvewatch.config.types import Config
from pvewatch.errors import ConfigError, PvewatchError
from pvewatch.lifecycle import startup
from pvewatch.lifecycle.heap import HeapFreezer
from pvewatch.lifecycle.reload import Carried, ConfigSource, Requests, reread
from pvewatch.lifecycle.runtime import Runtime, open_runtime, utcnow
from pvewatch.lifecycle.systemd import Notifier, ServiceStatus
from pvewatch.observability.metrics import Metrics
from pvewatch.pipeline import ClusterWatcher, PollResult
from pvewatch.sinks.base import SinkTypes
from pvewatch.sinks.table import SINK_TYPES

log = logging.getLogger("pvewatch")

# How long shutdown (and `once`) may spend delivering what is still pending.
FLUSH_TIMEOUT_SECS = 10.0


async def _flush(runtime: Runtime) -> bool:
    results = await asyncio.gather(*(d.drain(FLUSH_TIMEOUT_SECS) for d in runtime.deliverers))
    return all(results)


async def run(
    config: Config,
    *,
    source: ConfigSource | None = None,
    stop: asyncio.Event | None = None,
    reload: asyncio.Event | None = None,
    on_ready: Callable[[], None] = lambda: None,
    on_listening: Callable[[str], None] = lambda url: None,
    sink_types: SinkTypes = SINK_TYPES,
    heap: HeapFreezer | None = None,
) -> int:
    """`pvewatch run`: poll every cluster on its interval until SIGTERM/SIGINT or `stop`.
    SIGHUP (or `reload`) applies the config `source` reads now (pvewatch.lifecycle.reload).
    `on_ready` is called at each READY=1; `on_listening` gets the listener's URL (its real
    port when http.listen asks for 0) each time it binds. `heap`: the process's own
    (`pvewatch run`), not given in-process (lifecycle/heap.py)."""
    loop = asyncio.get_running_loop()
    requests = Requests(stop, reload)
    requests.install(loop)
    metrics = Metrics(clusters={}, sinks=())
    service = Carried(
        log,
        source,
        requests,
        Notifier.from_env(os.environ, logger=log, on_dropped=metrics.notification_dropped),
        metrics,
        ServiceStatus([c.name for c in config.clusters]),
        on_listening,
    )
    # The heartbeat tells /healthz that this loop is not blocked.
    background = [
        asyncio.create_task(service.heartbeat.run()),
        asyncio.create_task(service.notifier.keep_watchdog_fed()),
    ]
    try:
        await _serve(config, service, on_ready, sink_types, heap)
    finally:
        service.close_listener()
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        requests.uninstall(loop)
    log.info("stopped")
    return 0


async def _serve(
    config: Config,
    service: Carried,
    on_ready: Callable[[], None],
    sink_types: SinkTypes,
    heap: HeapFreezer | None,
) -> None:
    """Run runtimes one after the other: the first from `config`, then one per applied
    reload. A new config that cannot start (its store cannot be opened, ...) is logged
    and the previous one runs again."""
    previous: Config | None = None  # set while a reloaded config is starting
    while True:
        async with contextlib.AsyncExitStack() as stack:
            try:
                runtime = await stack.enter_async_context(
                    open_runtime(
                        config,
                        metrics=service.metrics,
                        readiness=service.readiness,
                        resumed=previous is not None,
                        sink_types=sink_types,
                        inbox=service.inbox,
                        heap=heap,
                    )
                )
                if service.http is None:  # bound once the store is open, kept across reloads
                    service.listen(config.http)
            except PvewatchError as e:
                if previous is None:
                    raise
                log.error("reload failed, going back to the previous config: %s", e)
                service.metrics.config_reloaded(False)
                config, previous = previous, None
                with contextlib.suppress(ConfigError):
                    service.listen(config.http)
                continue
            if previous is not None:
                _applied(config, previous, service)
            previous = None
            service.view.reconfigure(runtime.read_source())
            try:
                new = await _run_runtime(runtime, service, on_ready)
            finally:
                service.view.reconfigure(None)  # its store closes now
        if new is None:
            return
        config, previous = new, config


def _applied(config: Config, previous: Config, service: Carried) -> None:
    service.metrics.config_reloaded(True)
    if service.source is not None:
        service.source.applied(config)
    before, after = {c.name for c in previous.clusters}, {c.name for c in config.clusters}
    log.info(
        "config reloaded: %d cluster(s) (added: %s; removed: %s), %d sink(s)",
        len(after),
        ", ".join(sorted(after - before)) or "none",
        ", ".join(sorted(before - after)) or "none",
        len(config.sinks),
    )


async def _run_runtime(
    runtime: Runtime, service: Carried, on_ready: Callable[[], None]
) -> Config | None:
    """Poll and deliver until a stop (None) or a valid reload (the new config). On the way
    out: no new polls, the in-flight ones finish, then on a stop what is pending gets
    FLUSH_TIMEOUT_SECS; the deliverers stop (unsent events stay queued)."""
    config, notifier = runtime.config, service.notifier
    background = [asyncio.create_task(d.run()) for d in runtime.deliverers]
    service.status.clusters = [c.name for c in config.clusters]
    scheduler = _scheduler(runtime, service.status, notifier)
    scheduler.start()
    log.info("watching %d cluster(s)", len(config.clusters))
    # Ready once the config is loaded and the listener bound; the polls come after.
    _ready(service, on_ready)
    try:
        while True:
            if await service.requests.next() == "stop":
                log.info("stopping: finishing in-flight polls and flushing deliveries")
                notifier.stopping("stopping: finishing in-flight polls and flushing deliveries")
                await _stop_polling(runtime, scheduler)
                if not await _flush(runtime):
                    log.warning("stopping with undelivered events; they stay queued for next start")
                return None
            notifier.reloading()
            new = await _reread(runtime, service)
            if new is not None:
                log.info("reloading: finishing in-flight polls and deliveries")
                await _stop_polling(runtime, scheduler)
                return new
            _ready(service, on_ready)  # rejected: the runtime runs on
    finally:
        scheduler.shutdown(wait=False)
        for d in runtime.deliverers:
            await d.stop()
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)


async def _reread(runtime: Runtime, service: Carried) -> Config | None:
    """SIGHUP: log files are opened again (logrotate); the config file is read again and,
    when valid, returned with its listener applied. Rejected: the runtime runs on."""
    for opened in runtime.sinks:
        if opened.reopen is not None:
            opened.reopen()
    new = await reread(service.source, log)
    if new is not None:
        try:
            service.listen(new.http)
        except ConfigError as e:
            for problem in e.problems:
                log.error("reload rejected, the running config stays: %s", problem)
            new = None
    if new is None:
        service.metrics.config_reloaded(False)
    return new


def _scheduler(runtime: Runtime, status: ServiceStatus, notifier: Notifier) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=UTC)
    for cluster, watcher in zip(runtime.config.clusters, runtime.watchers, strict=True):
        scheduler.add_job(
            _poll_and_report,
            "interval",
            args=(runtime, watcher, status, notifier),
            seconds=cluster.interval_secs,
            jitter=min(1.0, cluster.interval_secs / 10),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(cluster.interval_secs)),
            next_run_time=utcnow(),
            id=f"poll:{cluster.name}",
        )
    for runner in runtime.checks:
        # Its own schedule, never the poll's: the first run a few seconds after the first
        # poll (it reads the nodes and guests of the poll's snapshot).
        interval = runner.check.interval_secs
        scheduler.add_job(
            runner.run,
            "interval",
            seconds=interval,
            jitter=min(5.0, interval / 10),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(interval)),
            next_run_time=utcnow() + timedelta(seconds=min(interval, 2.0)),
            id=f"check:{runner.cluster}:{runner.name}",
        )
    scheduler.add_job(
        _prune, "interval", hours=1, args=(runtime,), next_run_time=utcnow(), id="prune"
    )
    return scheduler


async def _stop_polling(runtime: Runtime, scheduler: AsyncIOScheduler) -> None:
    """No new polls; the ones in flight finish (and commit) first."""
    scheduler.pause()
    for watcher in runtime.watchers:
        await watcher.close()
    for runner in runtime.checks:
        await runner.close()


def _ready(service: Carried, on_ready: Callable[[], None]) -> None:
    service.notifier.ready(service.status.line())
    on_ready()


async def _poll_and_report(
    runtime: Runtime, watcher: ClusterWatcher, status: ServiceStatus, notifier: Notifier
) -> None:
    """One scheduled poll, then the one-line state for `systemctl status`. A per-node
    health check that waited for the poll's node list runs now, not an interval later."""
    result = await watcher.poll()
    if result.standby:  # another replica leads the cluster
        return
    if result.ok:
        for runner in runtime.checks:
            if runner.waiting and runner.cluster == watcher.cluster:
                await runner.run()
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


async def once(config: Config, *, sink_types: SinkTypes = SINK_TYPES) -> int:
    """`pvewatch once`: poll every cluster once, run each health check once, deliver what
    is pending, exit. 0 when every cluster was polled, 1 otherwise (a check that cannot
    read is logged, as in `run`)."""
    async with open_runtime(config, sink_types=sink_types) as runtime:
        results: list[PollResult] = await asyncio.gather(*(w.poll() for w in runtime.watchers))
        for cluster, result in zip(config.clusters, results, strict=True):
            if result.standby:
                log.warning("cluster %s is led by another replica: not polled", cluster.name)
            if not result.ok:
                log.error("cluster %s could not be polled: %s", cluster.name, result.error)
        for runner in runtime.checks:
            await runner.run()
        flushed = await _flush(runtime)
        if not flushed:
            log.warning("some events could not be delivered yet; they stay queued")
    return 0 if all(r.ok for r in results) else 1


def run_command(args: argparse.Namespace) -> int:
    """`pvewatch run`: 0 once stopped, 2 for a bad config, 1 when it cannot start."""
    config = startup.load_from(args)
    if config is None:
        return 2
    startup.logging_from(args, config)
    return _started(
        "run", lambda: run(config, source=startup.config_source(args), heap=HeapFreezer())
    )


def once_command(args: argparse.Namespace) -> int:
    """`pvewatch once`: 0 when every cluster was polled, 1 otherwise, 2 for a bad config."""
    config = startup.load_from(args)
    if config is None:
        return 2
    startup.logging_from(args, config)
    return _started("once", lambda: once(config))


def _started(command: str, main: Callable[[], Coroutine[None, None, int]]) -> int:
    try:
        return asyncio.run(main())
    except PvewatchError as e:  # e.g. http.listen in use, the store unreadable
        print(f"pvewatch {command}: {e}", file=sys.stderr)
        return 1
