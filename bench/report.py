"""Writes the figures of the last runs (bench/results/*.json) into bench/RESULTS.md,
between its `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` markers; the text around
them is written by hand.

    python -m bench.report
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from bench import checks, delivery, exporter, latency, poll, targets
from bench.common import ROOT

TABLES = {
    "poll": poll.table,
    "latency": latency.table,
    "delivery": delivery.table,
    "exporter": exporter.table,
    "checks": checks.table,
}


def machine_line(machine: dict[str, Any]) -> str:
    line = (
        f"{machine['cores']} cores, {machine['cpu']}, {machine['implementation']} "
        f"{machine['python']}, {machine['system']}"
    )
    if "load_1m" in machine:
        start, end = machine["load_1m"]
        ran = " to ".join(machine["ran"])
        line += f"; ran {ran}, load average (1 min) {start:.2f} at the start, {end:.2f} at the end"
    return line


def _replacing(block: str) -> Callable[[re.Match[str]], str]:
    return lambda m: f"{m[1]}{block}\n{m[2]}"


def main() -> None:
    path = ROOT / "bench" / "RESULTS.md"
    text = path.read_text()
    for name, render in TABLES.items():
        source = ROOT / "bench" / "results" / f"{name}.json"
        if not source.exists():
            continue
        data = json.loads(source.read_text())
        block = f"Machine: {machine_line(data['machine'])}.\n\n{render(data['results'])}"
        marker = re.compile(rf"(<!-- bench:{name} -->\n).*?(<!-- /bench:{name} -->)", re.S)
        text = marker.sub(_replacing(block), text)
    found = {
        name: json.loads(source.read_text())
        for name in TABLES
        if (source := ROOT / "bench" / "results" / f"{name}.json").exists()
    }
    block = targets.table(found)
    marker = re.compile(r"(<!-- bench:targets -->\n).*?(<!-- /bench:targets -->)", re.S)
    text = marker.sub(_replacing(block), text)
    path.write_text(text)
    print(block)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
