"""Benchmark 5, what the health checks add: API requests per minute and CPU per check at
their default intervals, at 10,000 guests on 16 nodes, beside the poll's own.

    python -m bench.checks [--guests 10000] [--nodes 16] [--rounds 5]

The simulator runs in its own process with every feature set up (HA resources, Ceph
warning, replication jobs, a QDevice, one failing disk) so that no check is idle. In this
process: the daemon's PVE client, SQLite store, watcher and one `CheckRunner` per check.
A check's CPU is this process's (user + sys) over one run — request, decode, findings,
evaluation, commit — the median of `rounds` runs after its baseline run; its requests per
minute are the requests of one run times runs per minute at its default interval. The poll
(three requests every 10 s) is measured the same way, for comparison. No timing is
asserted: these are figures.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import TOKEN, machine, median, scratch_dir, simulator, write_json
from pvewatch.checking import CheckRunner
from pvewatch.config.checks import default_checks
from pvewatch.config.types import ClusterConfig, TlsConfig
from pvewatch.pipeline import ClusterWatcher
from pvewatch.pve.client import PveClient
from pvewatch.secret import Secret
from pvewatch.store.sqlite import SqliteStore


def utcnow() -> datetime:
    return datetime.now(UTC)


def set_up_features(control: Any, nodes: int) -> None:
    """Every feature a check reads, so that none is idle."""
    guests = [r for r in control.get("/resources").json() if r["type"] in ("qemu", "lxc")]
    for g in guests[:20]:
        sid = f"{'vm' if g['type'] == 'qemu' else 'ct'}:{g['vmid']}"
        control.put(f"/ha/{sid}", json={"state": "started"}).raise_for_status()
    osd = {"OSD_DOWN": {"severity": "HEALTH_WARN", "message": "1 osds down", "count": 1}}
    control.put("/ceph", json={"checks": osd}).raise_for_status()
    for g in guests[: 2 * nodes]:
        target = "pve2" if g["node"] == "pve1" else "pve1"
        control.put(f"/replication/{g['vmid']}-0", json={"target": target}).raise_for_status()
    control.put("/qdevice", json={"state": "Connected"}).raise_for_status()
    control.put("/disks/pve1/sdb", json={"health": "FAILED!"}).raise_for_status()


async def measure(url: str, fingerprint: str | None, db: Path, rounds: int) -> dict[str, Any]:
    log = logging.getLogger("bench.checks")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    tls = TlsConfig(fingerprints=(fingerprint,)) if fingerprint else TlsConfig()
    cluster = ClusterConfig(
        "bench", (url,), token=Secret(TOKEN), tls=tls, timeout_secs=60, checks=default_checks()
    )
    out: dict[str, Any] = {}
    with SqliteStore(db) as store:
        async with PveClient(cluster, logger=log, min_interval_secs=0) as client:
            watcher = ClusterWatcher(
                cluster="bench", interval_secs=10, failure_threshold=3, source=client,
                store=store, sinks=[], clock=utcnow, logger=log,
            )  # fmt: skip
            await watcher.poll()  # the baseline
            cpu = []
            for _ in range(rounds):
                started = time.process_time()
                await watcher.poll()
                cpu.append(time.process_time() - started)
            out["poll"] = {
                "interval_secs": 10.0,
                "requests_per_run": 3,
                "requests_per_min": 18.0,
                "cpu_ms_per_run": median(cpu) * 1000,
                "cpu_ms_per_min": median(cpu) * 1000 * 6,
            }
            for check in cluster.checks:
                runner = CheckRunner(
                    cluster="bench", check=check, source=client, store=store, sinks=[],
                    clock=utcnow, snapshot=lambda: watcher.snapshot, logger=log,
                )  # fmt: skip
                first = await runner.run()
                cpu, requests = [], []
                for _ in range(rounds):
                    started = time.process_time()
                    result = await runner.run()
                    cpu.append(time.process_time() - started)
                    requests.append(result.requests)
                per_min = 60 / check.interval_secs
                out[check.name] = {
                    "status": result.status,
                    "baseline_events": len(first.events),
                    "interval_secs": check.interval_secs,
                    "requests_per_run": median(requests),
                    "requests_per_min": median(requests) * per_min,
                    "cpu_ms_per_run": median(cpu) * 1000,
                    "cpu_ms_per_min": median(cpu) * 1000 * per_min,
                }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--guests", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with simulator(args.guests, nodes=args.nodes) as sim, scratch_dir() as tmp:
        with sim.control() as control:
            set_up_features(control, args.nodes)
        figures = asyncio.run(measure(sim.url, sim.fingerprint, tmp / "state.db", args.rounds))
    checks = {k: v for k, v in figures.items() if k != "poll"}
    total = {
        "requests_per_min": sum(v["requests_per_min"] for v in checks.values()),
        "cpu_ms_per_min": sum(v["cpu_ms_per_min"] for v in checks.values()),
    }
    results = {"guests": args.guests, "nodes": args.nodes, "rounds": args.rounds,
               "figures": figures, "checks_total": total}  # fmt: skip
    write_json("checks", {"results": results, "machine": machine()})
    print(table(results))


def table(results: dict[str, Any]) -> str:
    """The RESULTS.md table (bench.report)."""
    lines = [
        f"{results['guests']:,} guests on {results['nodes']} nodes, default intervals, "
        f"median of {results['rounds']} runs after the baseline:",
        "",
        "| | interval | requests per run | requests per minute | CPU per run | CPU per minute |",
        "|---|---|---|---|---|---|",
    ]
    for name, v in results["figures"].items():
        label = "the poll (for comparison)" if name == "poll" else f"check `{name}`"
        lines.append(
            f"| {label} | {v['interval_secs']:g} s | {v['requests_per_run']:g} "
            f"| {v['requests_per_min']:.2f} | {v['cpu_ms_per_run']:.1f} ms "
            f"| {v['cpu_ms_per_min']:.1f} ms |"
        )
    total = results["checks_total"]
    lines.append(
        f"| **all checks** | | | **{total['requests_per_min']:.2f}** | "
        f"| **{total['cpu_ms_per_min']:.1f} ms** |"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
