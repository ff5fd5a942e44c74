"""Benchmark 3, delivery throughput: a burst of 10,000 events delivered to a local
receiver, Standard Webhooks signed (native format), in events per second; then the same
burst with a slow receiver (each answer 1 s late) beside the fast one: the fast one's
rate, and the poll durations meanwhile, must not suffer.

    python -m bench.delivery [--events 10000] [--concurrency 4]

The burst is recorded in pvewatch's store as one transaction (events about as many
guests, so a sink may send them in parallel up to its `concurrency`, default 4) and the
deliverers woken; the rate is events over the time from then to the last arrival.
Processes: pvewatch (`bench.probe`, polling a 1,000-guest simulator every second
throughout), the receivers (`bench.receiver`, checking every signature), the simulator.
"""

from __future__ import annotations

import argparse
import json
from contextlib import ExitStack
from typing import Any

from bench.common import (
    Process,
    machine,
    median,
    percentile,
    proc_cpu_secs,
    receiver,
    scratch_dir,
    simulator,
    webhook_sink,
    write_config,
    write_json,
)

SLOW_SECS = 1.0


def burst(events: int, concurrency: int, *, slow: bool) -> dict[str, Any]:
    with ExitStack() as stack:
        sim = stack.enter_context(simulator(1000))
        tmp = stack.enter_context(scratch_dir())
        fast, fast_url = stack.enter_context(receiver())
        options = f", concurrency: {concurrency}"
        sinks = webhook_sink("fast", fast_url, options)
        if slow:
            _, slow_url = stack.enter_context(receiver(SLOW_SECS))
            sinks += webhook_sink("slow", slow_url, options)
        config = write_config(tmp, sim, sinks=sinks, interval_secs=1)
        probe = stack.enter_context(Process("bench.probe", str(config), "--burst", str(events)))
        assert json.loads(probe.first).get("ready"), probe.first
        start = probe.wait_for(
            lambda lines: next((x for x in lines if "burst_at" in x), None),
            timeout=60,
            what="the burst to be recorded",
        )
        cpu_before = proc_cpu_secs(probe.pid)
        got = fast.wait_for(
            lambda lines: lines if len({x["id"] for x in lines}) >= events else None,
            timeout=events / 50 + 60,
            what=f"{events} deliveries",
        )
        cpu = proc_cpu_secs(probe.pid) - cpu_before
        polls = [p for p in probe.lines() if "poll_ms" in p]
    last = max(x["at"] for x in got)
    elapsed = last - start["burst_at"]
    during = [p["poll_ms"] for p in polls if p["answer_at"] <= last] or [0.0]
    return {
        "events": events,
        "concurrency": concurrency,
        "slow_beside": slow,
        "elapsed_s": elapsed,
        "events_per_s": events / elapsed,
        "cpu_ms_per_event": cpu * 1000 / events,
        "verified": all(x["verified"] for x in got),
        "duplicates": len(got) - len({x["id"] for x in got}),
        "polls_during": len(during),
        "poll_p50_ms": median(during),
        "poll_max_ms": max(during),
        "poll_p99_ms": percentile(during, 99),
    }


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| receivers | events | concurrency | delivered to the fast one | per second "
        "| pvewatch CPU per event | all signatures valid | polls meanwhile: p50 | max |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        who = f"fast + slow ({SLOW_SECS:g} s per answer)" if r["slow_beside"] else "fast alone"
        lines.append(
            f"| {who} | {r['events']:,} | {r['concurrency']} | {r['elapsed_s']:.1f} s "
            f"| **{r['events_per_s']:,.0f}/s** | {r['cpu_ms_per_event']:.2f} ms "
            f"| {'yes' if r['verified'] else 'NO'} | {r['poll_p50_ms']:.0f} ms "
            f"| {r['poll_max_ms']:.0f} ms |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    results = []
    for slow in (False, True):
        results.append(burst(args.events, args.concurrency, slow=slow))
        print(json.dumps(results[-1]), flush=True)
    write_json("delivery", {"machine": machine(), "args": vars(args), "results": results})
    print(table(results))


if __name__ == "__main__":
    main()
