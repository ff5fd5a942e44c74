"""pvewatch under measurement: a process that runs the daemon's own components
(`runtime.open_runtime`: store, sinks, metrics, client, watcher) and polls when told.

    python -m bench.worker CONFIG.yaml

It reads one JSON command per line on stdin and answers one JSON line on stdout:
    {"cmd": "poll"}   → {"cpu_ms", "wall_ms", "ok", "events", "resources", "rss_mb"}
    {"cmd": "cpu"}    → {"cpu_s"}: user + sys so far (around a /metrics scrape, say)
    {"cmd": "stats"}  → {"rss_mb", "peak_rss_mb", "metrics_url"}
    {"cmd": "quit"}   → exits
CPU is user + sys of this whole process (all threads) across the poll, from getrusage;
the benchmark driving it runs in another process, so its work never counts here.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import cpu_secs, peak_rss_mb, proc_rss_mb
from pvewatch.config.load import load_config
from pvewatch.lifecycle import runtime
from pvewatch.lifecycle.heap import HeapFreezer
from pvewatch.sinks.table import SINK_TYPES


async def serve(config_path: Path) -> None:
    config = load_config(config_path, os.environ, sink_types=SINK_TYPES)
    async with runtime.open_runtime(
        config, serve_http=config.http.listen is not None, heap=HeapFreezer()
    ) as rt:
        watcher = rt.watchers[0]
        url = rt.listener.url if rt.listener is not None else None
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            command = json.loads(line)
            answer: dict[str, Any]
            if command["cmd"] == "poll":
                started, cpu = time.perf_counter(), cpu_secs()
                result = await watcher.poll()
                answer = {
                    "cpu_ms": (cpu_secs() - cpu) * 1000,
                    "wall_ms": (time.perf_counter() - started) * 1000,
                    "ok": result.ok,
                    "error": result.error,
                    "events": len(result.events),
                    "resources": result.resources,
                    "rss_mb": proc_rss_mb(os.getpid()),
                }
            elif command["cmd"] == "cpu":  # around a /metrics scrape, say
                answer = {"cpu_s": cpu_secs()}
            elif command["cmd"] == "stats":
                answer = {
                    "rss_mb": proc_rss_mb(os.getpid()),
                    "peak_rss_mb": peak_rss_mb(),
                    "metrics_url": url,
                }
            else:
                return
            print(json.dumps(answer), flush=True)


def main() -> None:
    asyncio.run(serve(Path(sys.argv[1])))


if __name__ == "__main__":
    main()
