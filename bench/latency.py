"""Benchmark 2, detection latency: from the simulator changing a guest to the signed
webhook arriving at a local receiver, p50/p99, at poll intervals of 2 s and 10 s; and
the part that is pvewatch's own processing: from the last byte of the /cluster/resources
answer to the webhook's arrival (decoding, the /cluster/status and /cluster/tasks
requests, normalize, diff, rules, commit, delivery, signing, HTTP).

    python -m bench.latency [--quick | --full] [--guests 10000]

--quick (the default, `make bench`): 30 changes per interval; --full: 200. Changes come
at random moments (0 to 0.6 intervals apart), one guest each, so they fall at every phase
of the poll cycle: the end-to-end figure is about half an interval plus the processing.
Processes: the simulator, pvewatch (`bench.probe`: the daemon's components, a webhook
sink, holds off) and the receiver (`bench.receiver`, checking every signature).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from typing import Any

from bench.common import (
    Process,
    flip,
    guest_ids,
    machine,
    median,
    percentile,
    receiver,
    scratch_dir,
    simulator,
    webhook_sink,
    write_config,
    write_json,
)


def measure(guests: int, interval: float, changes: int, rng: random.Random) -> dict[str, Any]:
    with simulator(guests) as sim, scratch_dir() as tmp, receiver() as (hooks, url):
        config = write_config(
            tmp, sim, sinks=webhook_sink("hook", url, ", concurrency: 8"), interval_secs=interval
        )
        ids = guest_ids(sim)
        with Process("bench.probe", str(config)) as probe, sim.control() as control:
            assert json.loads(probe.first).get("ready"), probe.first
            wanted = rng.sample(ids, changes)
            changed_at: dict[str, float] = {}
            for guest in wanted:
                time.sleep(rng.uniform(0, 0.6 * interval))
                flip(control, guest, "stopped")
                changed_at[guest] = time.time()
            hooks.wait_for(
                lambda lines: {d["resource"] for d in lines} >= set(wanted),
                timeout=3 * interval + 30,
                what="a webhook for every change",
            )
            polls = probe.lines()
        arrivals = {d["resource"]: d for d in reversed(hooks.lines())}  # first arrival wins
    answered = {eid: p["answer_at"] for p in polls for eid in p.get("events", ())}
    detection = [arrivals[g]["at"] - changed_at[g] for g in wanted]
    processing = [arrivals[g]["at"] - answered[arrivals[g]["id"]] for g in wanted]
    assert all(arrivals[g]["verified"] for g in wanted), "a webhook failed verification"
    return {
        "guests": guests,
        "interval_secs": interval,
        "changes": changes,
        "detection_p50_ms": median(detection) * 1000,
        "detection_p99_ms": percentile(detection, 99) * 1000,
        "detection_max_ms": max(detection) * 1000,
        "processing_p50_ms": median(processing) * 1000,
        "processing_p99_ms": percentile(processing, 99) * 1000,
        "poll_wall_p50_ms": median([p["poll_ms"] for p in polls]),
    }


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| interval | guests | changes | change → webhook p50 | p99 | max "
        "| pvewatch's processing p50 | p99 | poll wall p50 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['interval_secs']:g} s | {r['guests']:,} | {r['changes']} "
            f"| {r['detection_p50_ms']:.0f} ms | {r['detection_p99_ms']:.0f} ms "
            f"| {r['detection_max_ms']:.0f} ms | **{r['processing_p50_ms']:.0f} ms** "
            f"| **{r['processing_p99_ms']:.0f} ms** | {r['poll_wall_p50_ms']:.0f} ms |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="30 changes per interval (default)")
    size.add_argument("--full", action="store_true", help="200 changes per interval")
    parser.add_argument("--guests", type=int, default=10_000)
    parser.add_argument("--intervals", default="2,10")
    args = parser.parse_args()
    changes = 200 if args.full else 30
    rng = random.Random(8)
    results = []
    for interval in (float(s) for s in args.intervals.split(",")):
        results.append(measure(args.guests, interval, changes, rng))
        print(json.dumps(results[-1]), flush=True)
    write_json("latency", {"machine": machine(), "args": vars(args), "results": results})
    print(table(results))


if __name__ == "__main__":
    main()
