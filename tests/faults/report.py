"""Print the figures of the last faults run: `python -m tests.faults.report [FILE]`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.faults.figures import COUNTERS

DEFAULT = Path(__file__).resolve().parents[2] / ".faults-report.json"


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else DEFAULT
    if not path.exists():
        print(f"no report at {path}: run `make test` or `make soak` first", file=sys.stderr)
        return 1
    report = json.loads(path.read_text())
    tests = ", ".join(f"{n} {k}" for k, n in report["tests"].items())
    print(
        f"faults suite ({report['mode']}), {report['finished_at']}, commit {report['commit']},"
        f" {report['duration_secs']} s: {tests}"
    )
    for key, what in COUNTERS.items():
        print(f"  {report['counts'].get(key, 0):>8}  {key:<24} {what}")
    for key, value in report["measured"].items():
        print(f"  {value:>8}  {key}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
