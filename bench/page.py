"""The status page with 100,000 stored events: what its first load costs the server (time
to make the answer, on the listener's worker thread) and what it sends (bytes, gzipped as
browsers ask), with the API's events page and a few filters beside it.

A SQLite store is filled with `--events` events over 3 clusters of 1,000 guests (one
commit per 1,000 events, each routed to two sinks; then 98% of the outbox rows marked
delivered and 0.2% dead, as a store that has run for a while), served by the real
listener with the read routes. Each path is asked once cold (the first request after
the store is opened) and then `--rounds` times; server time is measured inside the
handler, wall time by the client over loopback.

    bench/.venv/bin/python -m bench.page [--events 100000] [--rounds 20]
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import sqlite3
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.common import ROOT, machine, median, percentile, scratch_dir
from pvewatch.config.types import HttpConfig
from pvewatch.http.listener import Listener
from pvewatch.http.page import read_routes
from pvewatch.http.routes import Answer, Asked, Route
from pvewatch.http.view import ReadView, Source
from pvewatch.model import (
    Cause,
    Change,
    Event,
    Resource,
    ResourceRef,
    Severity,
    Snapshot,
    SourceHealth,
)
from pvewatch.observability.metrics import Metrics
from pvewatch.observability.probes import Heartbeat, Readiness
from pvewatch.store.sqlite import SqliteStore

CLUSTERS = ("prod", "lab", "dr")
GUESTS = 1000
T0 = datetime(2026, 1, 1, tzinfo=UTC)
PATHS = (
    "/",
    "/?part=live",
    "/api/v1/events?limit=100",
    "/?cluster=lab",
    "/?severity=critical",
    "/?type=node.*",
    # The worst cases: a filter no stored event matches reads every row.
    "/?type=source.*",
    "/api/v1/events?resource=qemu/5",
    "/api/v1/status",
    "/api/v1/deliveries",
)


def fill(path: Path, events: int) -> None:
    types = [("guest.stopped", Severity.INFO), ("guest.started", Severity.INFO),
             ("guest.migrated", Severity.INFO), ("guest.renamed", Severity.INFO),
             ("node.offline", Severity.CRITICAL), ("guest.stopped", Severity.CRITICAL)]  # fmt: skip
    with SqliteStore(path, clock=lambda: T0) as store:
        for cluster in CLUSTERS:
            res = {
                f"qemu/{i}": Resource(f"qemu/{i}", "qemu", "running", f"pve{i % 10}", f"vm{i}", i)
                for i in range(GUESTS)
            }
            snap = Snapshot(cluster, res, T0)
            store.commit_poll(cluster, snapshot=snap, events=[], sinks=[], health=SourceHealth())
        batch: list[Event] = []
        for n in range(events):
            cluster = CLUSTERS[n % len(CLUSTERS)]
            type_, severity = types[n % len(types)] if n % 97 else types[4]
            vmid = n % GUESTS
            ref = ResourceRef(f"qemu/{vmid}", "qemu", vmid, f"vm{vmid}", f"pve{vmid % 10}")
            batch.append(
                Event(
                    id=f"evt_{n:012d}",
                    type=type_,
                    time=T0 + timedelta(seconds=n),
                    cluster=cluster,
                    severity=severity if n % 97 else Severity.CRITICAL,
                    summary=f"VM {vmid} (vm{vmid}) on pve{vmid % 10} stopped by alice@pve",
                    resource=ref,
                    change=Change("status", "running", "stopped"),
                    cause=Cause(
                        "user", f"UPID:pve1:0001:0002:{n:08X}:qmstop:{vmid}:alice@pve:", "alice@pve"
                    ),
                )
            )
            if len(batch) == 1000:
                store.commit_poll(cluster, snapshot=None, events=batch, sinks=["hook", "log"],
                                  health=SourceHealth())  # fmt: skip
                batch = []
        if batch:
            store.commit_poll(batch[0].cluster, snapshot=None, events=batch, sinks=["hook", "log"],
                              health=SourceHealth())  # fmt: skip
    with sqlite3.connect(path) as conn:  # a store that has run a while: most rows delivered
        conn.execute("UPDATE outbox SET state = 'delivered' WHERE outbox_id % 50 != 0")
        conn.execute(
            "UPDATE outbox SET state = 'dead', attempts = 20, last_error = 'HTTP 500 from"
            " https://hooks.example.com' WHERE outbox_id % 500 = 0 AND sink = 'hook'"
        )


class Timed:
    """The read routes with the time each answer took inside the handler."""

    def __init__(self, routes: tuple[Route, ...]) -> None:
        self.last = 0.0  # seconds, of the last answer
        self.routes = tuple(replace(r, answer=self._timed(r.answer)) for r in routes)

    def _timed(self, answer: Any) -> Any:
        def timed(asked: Asked) -> Answer:
            start = time.perf_counter()
            found: Answer = answer(asked)
            self.last = time.perf_counter() - start
            return found

        return timed


def measure(events: int, rounds: int) -> dict[str, Any]:
    with scratch_dir() as tmp:
        db = tmp / "state.db"
        start = time.perf_counter()
        fill(db, events)
        fill_secs = time.perf_counter() - start
        with SqliteStore(db) as store:
            view = ReadView(Source(store, clusters=list(CLUSTERS), sinks=["hook", "log"]))
            timed = Timed(read_routes(view, logging.getLogger("bench")))
            listener = Listener(
                HttpConfig(listen="127.0.0.1:0"),
                metrics=Metrics(clusters={}, sinks=()),
                readiness=Readiness(),
                heartbeat=Heartbeat(),
                routes=timed.routes,
            )
            listener.start()
            rows = []
            try:
                with httpx.Client(base_url=listener.url, timeout=60) as client:
                    for path in PATHS:
                        server, wall = [], []
                        for _ in range(rounds + 1):
                            t = time.perf_counter()
                            answer = client.get(path, headers={"Accept-Encoding": "gzip"})
                            wall.append(time.perf_counter() - t)
                            answer.raise_for_status()
                            server.append(timed.last)
                        raw = answer.content
                        rows.append(
                            {
                                "path": path,
                                "cold_server_ms": server[0] * 1000,
                                "server_ms": median(server[1:]) * 1000,
                                "server_p90_ms": percentile(server[1:], 90) * 1000,
                                "wall_ms": median(wall[1:]) * 1000,
                                "bytes": len(raw),
                                "gzip_bytes": len(gzip.compress(raw, 1))
                                if len(raw) > 1024
                                else len(raw),
                            }
                        )
            finally:
                listener.close()
        size_mb = db.stat().st_size / 1e6
    return {"machine": machine(), "events": events, "rounds": rounds, "fill_secs": fill_secs,
            "db_mb": size_mb, "paths": rows}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    result = measure(args.events, args.rounds)
    out = ROOT / "bench" / "results" / "page.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    events, db_mb, fill_secs = result["events"], result["db_mb"], result["fill_secs"]
    print(f"{events:,} events, store {db_mb:.0f} MB (filled in {fill_secs:.0f} s)")
    print("| path | first load, server | then, server (p90) | wall | bytes | gzipped |")
    print("|---|---|---|---|---|---|")
    for r in result["paths"]:
        server = f"{r['server_ms']:.1f} ms ({r['server_p90_ms']:.1f})"
        sizes = f"{r['bytes']:,} | {r['gzip_bytes']:,}"
        first, wall = f"{r['cold_server_ms']:.1f} ms", f"{r['wall_ms']:.1f} ms"
        print(f"| `{r['path']}` | {first} | {server} | {wall} | {sizes} |")


if __name__ == "__main__":
    main()
