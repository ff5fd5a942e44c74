"""A child process for tests/faults/test_disk.py: a watcher whose store's writes the
kernel refuses. RLIMIT_FSIZE is per process, so it runs here, not in pytest's process:

    python -m tests.faults.fsize STATE_DIR OUTAGE_POLLS  → one JSON object on stdout

Baseline poll; a guest starts; the file size limit drops to 0 (SIGXFSZ ignored, so the
kernel refuses every write to a file with EFBIG, "File too large"; SQLite says "disk I/O
error" — a limit just past a file's end ends the same way, as SQLite retries a short write
and the retry is refused); OUTAGE_POLLS polls; the limit goes back; two polls. The parent
asserts on what this prints; nothing here is asserted."""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pvewatch.pve.client import PveClient
from pvewatch.store.sqlite import SqliteStore
from tests.e2e.harness import simulator
from tests.faults.rig import hand_watcher, pinned_cluster
from tests.faults.support import start_guest, types


class _Kept(logging.Handler):
    """The log lines, for the parent (stderr may be a file, which the limit cuts short)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


async def _run(state: Path, outage: int) -> dict[str, Any]:
    kept = _Kept()
    logging.getLogger().addHandler(kept)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    db = state / "state.db"
    with simulator() as sim, SqliteStore(db) as store:
        cluster = pinned_cluster("disk", sim, source_failure_threshold=2)
        async with PveClient(cluster, min_interval_secs=0) as client:
            watcher = hand_watcher(cluster, client, store)
            baseline = await watcher.poll()
            guest = start_guest(sim)
            resource.setrlimit(resource.RLIMIT_FSIZE, (0, hard))
            try:
                refused = [await watcher.poll() for _ in range(outage)]
            finally:
                resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            after = [await watcher.poll() for _ in range(2)]
        events = store.events()
        pending = store.due("events", datetime.now(UTC))
        problems = store.check_integrity()
    return {
        "db": str(db),
        "guest": guest,
        "baseline_ok": baseline.ok,
        "refused": [[r.ok, r.error_kind, r.error] for r in refused],
        "after": [[r.ok, len(r.events)] for r in after],
        "events": types(events),
        "event_ids": [e.id for e in events],
        "pending_ids": [item.event.id for item in pending],
        "integrity_problems": problems,
        "errors": kept.lines,
    }


def main() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
    state, outage = Path(sys.argv[1]), int(sys.argv[2])
    print(json.dumps(asyncio.run(_run(state, outage))))


if __name__ == "__main__":
    main()
