"""pvewatch running as the daemon does (polls on an interval, deliverers sending), with
timestamps for the latency and delivery benchmarks. Its own process.

    python -m bench.probe CONFIG.yaml [--burst N]

The components are the daemon's (`runtime.open_runtime`: store, sinks, deliverers,
metrics); the watcher is built as the daemon builds it, except that its PVE client gets a
transport that notes when the last byte of each /cluster/resources answer arrived — the
"poll answer received" instant — without touching pvewatch's code. Polls run every
`interval_secs` (no jitter). Prints JSON lines: `{"ready": ...}` after the baseline, then
per poll `{"answer_at", "poll_ms", "events": [ids]}`. `--burst N` first records N
synthetic events (one per resource, so they may go in parallel) for every sink, and prints
`{"burst_at": ...}` when the deliverers are woken. Stops when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path

import httpx

from bench.common import cpu_secs
from pvewatch.config.load import load_config
from pvewatch.config.types import Config
from pvewatch.lifecycle import runtime
from pvewatch.lifecycle.heap import HeapFreezer
from pvewatch.model import Event, ResourceRef, Severity, event_id
from pvewatch.net.tls import build_transport
from pvewatch.observability.observe import Observers
from pvewatch.pipeline import ClusterWatcher
from pvewatch.pve.client import PveClient
from pvewatch.routing import route
from pvewatch.sinks.base import delivering
from pvewatch.sinks.table import SINK_TYPES


class _TimedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, done: Callable[[float], None]) -> None:
        self._inner, self._done = inner, done

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk
        self._done(time.time())

    async def aclose(self) -> None:
        await self._inner.aclose()


class AnswerClock(httpx.AsyncBaseTransport):
    """Notes when the last byte of a /cluster/resources answer arrived."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self.answer_at = 0.0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if not request.url.path.endswith("/cluster/resources"):
            return response
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_TimedStream(response.stream, self._note),
            extensions=response.extensions,
        )

    def _note(self, at: float) -> None:
        self.answer_at = at

    async def aclose(self) -> None:
        await self._inner.aclose()


def burst_events(count: int, now: datetime) -> list[Event]:
    """`count` guest.stopped events about as many guests (lines that may go in parallel)."""
    events = []
    for n in range(count):
        ref = ResourceRef(f"qemu/{100 + n}", "qemu", 100 + n, f"vm{n}", f"pve{n % 30}")
        events.append(
            Event(
                id=event_id("bench", "guest.stopped", ref.id, None, now),
                type="guest.stopped",
                time=now,
                cluster="bench",
                severity=Severity.WARNING,
                summary=f"VM {ref.vmid} ({ref.name}) on {ref.node} stopped",
                resource=ref,
            )
        )
    return events


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


async def run(config: Config, burst: int) -> None:
    cluster = config.clusters[0]
    delivered = delivering(config.sinks, SINK_TYPES)
    heap = HeapFreezer()
    async with runtime.open_runtime(config, heap=heap) as rt:
        clock = AnswerClock(build_transport(cluster.name, cluster.tls))
        client = PveClient(cluster, transport=clock)
        watcher = ClusterWatcher(
            cluster=cluster.name,
            interval_secs=cluster.interval_secs,
            failure_threshold=cluster.source_failure_threshold,
            source=client,
            store=rt.store,
            sinks=functools.partial(route, delivered),
            clock=runtime.utcnow,
            on_commit=rt.wake_deliverers,
            rules=config.rules,
            observer=Observers(rt.metrics, heap),  # as the daemon's watchers
        )
        tasks = [asyncio.create_task(d.run()) for d in rt.deliverers]
        await watcher.poll()
        emit(ready=True, pid=os.getpid())
        if burst:
            events = burst_events(burst, runtime.utcnow())
            route_to = functools.partial(route, delivered)
            await asyncio.to_thread(rt.store.record_events, events, route_to)
            emit(burst_at=time.time(), cpu_s=cpu_secs())
            rt.wake_deliverers(events)
        stop = asyncio.create_task(_stdin_closed())
        next_at = time.monotonic()
        while not stop.done():
            next_at += cluster.interval_secs
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(stop), max(0.0, next_at - time.monotonic()))
            if stop.done():
                break
            started = time.perf_counter()
            result = await watcher.poll()
            emit(
                answer_at=clock.answer_at,
                done_at=time.time(),
                poll_ms=(time.perf_counter() - started) * 1000,
                ok=result.ok,
                events=[e.id for e in result.events],
                cpu_s=cpu_secs(),
            )
        await watcher.close()
        await client.aclose()
        for d in rt.deliverers:
            await d.stop(grace_secs=0.5)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _stdin_closed() -> None:
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config", type=Path)
    parser.add_argument("--burst", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(run(load_config(args.config, os.environ, sink_types=SINK_TYPES), args.burst))


if __name__ == "__main__":
    main()
