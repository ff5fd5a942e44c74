"""Before / after in one run: pvewatch of this checkout and of another one (a `git
archive` of main, say) poll the same simulated cluster, interleaved poll by poll, so the
machine's load falls on both alike.

    python -m bench.compare OTHER_TREE [--sizes 10000] [--rounds 15]

Each side is a `bench.worker` process started in its tree (its own `pvewatch` package
comes first on sys.path); the figures are medians of quiet polls (no change) of CPU
(getrusage of the worker) and wall time, and each worker's RSS after the polls and peak.
The 1-minute load average before and after is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from bench.common import ROOT, Worker, median, scratch_dir, simulator, write_config


def compare(other: Path, guests: int, rounds: int) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    with simulator(guests) as sim, scratch_dir() as tmp_a, scratch_dir() as tmp_b:
        sides = {"this": (ROOT, tmp_a), "other": (other, tmp_b)}
        workers = {name: Worker(write_config(t, sim), tree) for name, (tree, t) in sides.items()}
        try:
            polls: dict[str, list[dict[str, Any]]] = {name: [] for name in workers}
            for n in range(rounds + 3):  # baseline and two warm-up polls first
                for name, worker in workers.items():
                    answer = worker.ask("poll")
                    assert answer["ok"], answer
                    assert n == 0 or answer["events"] == 0, answer
                    if n >= 3:
                        polls[name].append(answer)
            stats = {name: w.ask("stats") for name, w in workers.items()}
        finally:
            for worker in workers.values():
                worker.close()
    result: dict[str, Any] = {"guests": guests, "load_1m": [load_before, os.getloadavg()[0]]}
    for name, answers in polls.items():
        result[name] = {
            "cpu_ms": median([p["cpu_ms"] for p in answers]),
            "wall_ms": median([p["wall_ms"] for p in answers]),
            "rss_mb": stats[name]["rss_mb"],
            "peak_rss_mb": stats[name]["peak_rss_mb"],
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("other", type=Path)
    parser.add_argument("--sizes", default="10000")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    for guests in (int(s) for s in args.sizes.split(",")):
        print(json.dumps(compare(args.other.resolve(), guests, args.rounds)), flush=True)


if __name__ == "__main__":
    main()
