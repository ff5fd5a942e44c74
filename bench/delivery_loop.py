"""The delivery loop alone, for before/after comparisons and profiles: a `Deliverer` of
one `WebhookSink` (native format, Standard Webhooks signed) over a `SqliteStore` file,
sending a burst to a `bench.receiver` process; rate and CPU per delivery.

    python -m bench.delivery_loop [--events 2000] [--profile]

Run it from another checkout's root with this file's path (`cd /tmp/main && python
/path/to/bench/delivery_loop.py`) to measure that checkout's pvewatch: the current
directory comes first on sys.path. Alternate the two for a fair comparison on a busy
machine. `--profile`: the store calls run inline (not in threads) under cProfile, and
the top functions by own time are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.getcwd())

from bench.common import cpu_secs, receiver
from bench.probe import burst_events
from pvewatch.deliver.deliverer import Deliverer
from pvewatch.deliver.policy import RetryPolicy
from pvewatch.deliver.settings import Settings
from pvewatch.lifecycle.runtime import utcnow
from pvewatch.secret import Secret
from pvewatch.sinks.formats.base import FormatOptions
from pvewatch.sinks.formats.table import build_formatter
from pvewatch.sinks.webhook import WebhookSink
from pvewatch.store.sqlite import SqliteStore
from tests.e2e.receiver import SECRET


async def run(url: str, events: int, profile: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "state.db")
        formatter = build_formatter("fast", FormatOptions())
        sink = WebhookSink("fast", url=Secret(url), formatter=formatter, secrets=[Secret(SECRET)])
        store.record_events(burst_events(events, utcnow()), lambda event: ["fast"])
        deliverer = Deliverer(
            store,
            sink,
            policy=RetryPolicy(),
            clock=utcnow,
            rng=random.Random(1),
            logger=logging.getLogger("bench"),
            settings=Settings(concurrency=4),
        )
        profiler: Any = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        cpu, started = cpu_secs(), time.perf_counter()
        await deliverer.drain(600)
        elapsed, used = time.perf_counter() - started, cpu_secs() - cpu
        if profiler is not None:
            import pstats

            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        print(
            f"{events} deliveries in {elapsed:.2f} s: {events / elapsed:.0f}/s, "
            f"{used * 1000 / events:.2f} ms CPU each (load {os.getloadavg()[0]:.2f})"
        )
        await sink.aclose()
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if args.profile:

        async def inline(func: Any, /, *a: Any, **k: Any) -> Any:
            return func(*a, **k)

        asyncio.to_thread = inline  # type: ignore[assignment]  # a profile of one thread
    with receiver() as (_, url):
        asyncio.run(run(url, args.events, args.profile))


if __name__ == "__main__":
    main()
