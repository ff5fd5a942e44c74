"""Benchmark 1, the cost of one poll: CPU (user + sys of the pvewatch process) and RSS
per poll cycle with no change and with 1% of the guests changed, at 100 to 50,000
guests, against the floor: the same /cluster/resources body decoded by msgspec alone.

    python -m bench.poll [--sizes 100,1000,10000,50000] [--rounds 15]

pvewatch runs as its own process (`bench.worker`: the daemon's components, polling when
told); the simulator is a third process. A poll cycle is what the daemon does every
interval: fetch /cluster/resources, /cluster/status and /cluster/tasks, normalize, diff,
rules, commit, metrics. Peak RSS is the worker's high-water mark over the whole run
(baseline poll included), one process per size.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import msgspec
import orjson

from bench.common import (
    Sim,
    Worker,
    flip,
    guest_ids,
    machine,
    median,
    percentile,
    scratch_dir,
    simulator,
    write_config,
    write_json,
)

CHANGED_SHARE = 0.01


def decode_cpu_ms(decode: Callable[[bytes], Any], body: bytes, repeat: int = 15) -> float:
    """The median CPU time of decoding `body` (this process, nothing else running here)."""
    decode(body)
    times = []
    for _ in range(repeat):
        started = time.process_time()
        decode(body)
        times.append((time.process_time() - started) * 1000)
    return median(times)


def floor(sim: Sim) -> dict[str, Any]:
    """The body pvewatch receives, decoded by msgspec (the floor), orjson and json."""
    with sim.api() as api:
        body = api.get("/cluster/resources", headers={"Accept-Encoding": "identity"}).content
    return {
        "body_bytes": len(body),
        "msgspec_ms": decode_cpu_ms(msgspec.json.decode, body),
        "orjson_ms": decode_cpu_ms(orjson.loads, body),
        "json_ms": decode_cpu_ms(json.loads, body),
    }


def measure(guests: int, rounds: int) -> dict[str, Any]:
    with simulator(guests) as sim, scratch_dir() as tmp:
        result: dict[str, Any] = {"guests": guests, "floor": floor(sim)}
        ids = guest_ids(sim)
        with Worker(write_config(tmp, sim)) as worker, sim.control() as control:
            baseline = worker.ask("poll")
            assert baseline["ok"], baseline
            result["resources"] = baseline["resources"]
            result["baseline_cpu_ms"] = baseline["cpu_ms"]
            for _ in range(2):  # warm-up: the first polls after the baseline do more
                worker.ask("poll")
            quiet = [worker.ask("poll") for _ in range(rounds)]
            assert all(p["ok"] and p["events"] == 0 for p in quiet), quiet
            result["quiet"] = _summary(quiet)
            changed = []
            per_round = max(1, round(len(ids) * CHANGED_SHARE))
            # 1% of 50,000 is 500 edits of the simulator a round: fewer rounds there.
            for n in range(rounds if guests <= 10_000 else 3):
                batch = ids[n * per_round % len(ids) :][:per_round]
                for guest in batch:
                    flip(control, guest, "stopped" if n % 2 == 0 else "running")
                changed.append(worker.ask("poll"))
            result["changed"] = _summary(changed)
            result["changed"]["events_per_poll"] = median([p["events"] for p in changed])
            result["peak_rss_mb"] = worker.ask("stats")["peak_rss_mb"]
        result["ratio_quiet"] = result["quiet"]["cpu_ms"] / result["floor"]["msgspec_ms"]
        return result


def _summary(polls: list[dict[str, Any]]) -> dict[str, Any]:
    cpu = [p["cpu_ms"] for p in polls]
    return {
        "cpu_ms": median(cpu),
        "cpu_p90_ms": percentile(cpu, 90),
        "wall_ms": median([p["wall_ms"] for p in polls]),
        "rss_mb": max(p["rss_mb"] for p in polls),
        "polls": len(polls),
    }


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| guests (resources) | body | floor: msgspec | orjson | json "
        "| pvewatch, no change | 1% changed (events) | pvewatch / floor "
        "| RSS after polls | peak RSS | per resource: CPU | peak RSS above the smallest |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    # Linear growth shows as a per-resource cost that stays flat from size to size; RSS
    # is counted above the smallest run's, which is the interpreter and its imports.
    base = min(results, key=lambda r: r["resources"]) if results else None
    for r in results:
        f, q, c = r["floor"], r["quiet"], r["changed"]
        lines.append(
            f"| {r['guests']:,} ({r['resources']:,}) | {f['body_bytes'] / 1e6:.2f} MB "
            f"| {f['msgspec_ms']:.1f} ms | {f['orjson_ms']:.1f} ms | {f['json_ms']:.1f} ms "
            f"| **{q['cpu_ms']:.1f} ms** (p90 {q['cpu_p90_ms']:.1f}) "
            f"| {c['cpu_ms']:.1f} ms ({c['events_per_poll']:.0f}) "
            f"| **{r['ratio_quiet']:.1f}x** | {q['rss_mb']:.0f} MB | {r['peak_rss_mb']:.0f} MB "
            f"| {q['cpu_ms'] * 1000 / r['resources']:.1f} µs | {_above(r, base)} |"
        )
    return "\n".join(lines)


def _above(r: dict[str, Any], base: dict[str, Any] | None) -> str:
    if base is None or r is base:
        return "—"
    extra = (r["peak_rss_mb"] - base["peak_rss_mb"]) * 1e6 / (r["resources"] - base["resources"])
    return f"{extra / 1000:.1f} KB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000,50000")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    results = []
    for guests in (int(s) for s in args.sizes.split(",")):
        results.append(measure(guests, args.rounds))
        print(json.dumps(results[-1]), flush=True)
    write_json("poll", {"machine": machine(), "args": vars(args), "results": results})
    print(table(results))


if __name__ == "__main__":
    main()
