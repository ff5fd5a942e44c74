"""The figures of a faults run: counters the tests add to, written as JSON at the end of
the session (`.faults-report.json`, or `$PVEWATCH_FAULTS_REPORT`) so that the numbers in
docs/RELIABILITY.md can be reproduced. `python -m tests.faults.report` prints them."""

from __future__ import annotations

import json
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# What each counter means, in the order the report prints them.
COUNTERS = {
    "faults_injected": "failing answers, dead endpoints, store and disk faults injected",
    "outages": "outages driven through the pipeline (each checked for exactly one "
    "source.unreachable and one source.recovered)",
    "polls": "polls run under faults",
    "kills_survived": "kill -9 of a running pvewatch, each followed by a restart",
    "events_checked": "events checked for loss, duplicate ids and byte-identical redelivery",
    "inputs_fuzzed": "generated or corpus inputs fed to parsers, the pipeline and listeners",
    "garbage_requests": "junk, oversized and stalled requests sent to the listeners",
    "tls_refusals": "TLS handshakes refused (wrong pin, wrong CA, expired, plain HTTP)",
    "canary_places_searched": "logs, events, files and bodies searched for secrets",
    "canary_hits": "secrets found in any of them (must be 0)",
}


@dataclass
class Figures:
    soak: bool = False
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    measured: dict[str, float] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def scaled(self, fast: int, soak: int) -> int:
        """How many times to repeat something: `fast` in CI, `soak` with --soak."""
        return soak if self.soak else fast

    def add(self, counter: str, n: int = 1) -> None:
        if counter not in COUNTERS:
            raise KeyError(f"unknown faults counter {counter!r}")
        self.counts[counter] += n

    def measure(self, name: str, value: float) -> None:
        """A measurement (bytes, seconds); the worst value of the run is kept."""
        self.measured[name] = max(value, self.measured.get(name, value))

    def outcome(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def to_dict(self, root: Path) -> dict[str, Any]:
        return {
            "mode": "soak" if self.soak else "fast",
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "duration_secs": round(time.monotonic() - self.started, 1),
            "commit": _commit(root),
            "python": platform.python_version(),
            "tests": dict(sorted(self.outcomes.items())),
            "counts": self.counts,
            "measured": {k: round(v, 3) for k, v in sorted(self.measured.items())},
        }

    def write(self, path: Path, root: Path) -> None:
        path.write_text(json.dumps(self.to_dict(root), indent=2) + "\n")


def _commit(root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
