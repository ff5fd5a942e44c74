"""`pvewatch demo` shows what a newcomer came to see in its first minute: stops, sent after
a short hold that the banner names."""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import httpx

from pvewatch.config.shape import DEFAULT_HOLD_SECS
from pvewatch.operate.demo import DEMO_HOLD_SECS, demo_config
from tests.e2e.harness import TOKEN, simulator


def test_every_held_type_is_held_briefly(tmp_path: Path) -> None:
    with simulator() as sim:
        config = demo_config(sim, TOKEN, tmp_path, interval_secs=2.0)
    holds = config.rules.shape.hold_secs
    assert set(holds) == set(DEFAULT_HOLD_SECS)  # still held, as a real config would be
    assert set(holds.values()) == {DEMO_HOLD_SECS}
    assert DEMO_HOLD_SECS <= 10 < min(DEFAULT_HOLD_SECS.values())


class Lines:
    """The lines a process prints, read on a thread, waited for with a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        assert proc.stdout is not None
        threading.Thread(target=self._read, args=(proc.stdout,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)

    def wait(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            if found := re.search(pattern, line):
                return found
        raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(self.seen)}")


def test_a_stop_prints_after_the_short_hold_the_banner_names() -> None:
    demo = [sys.executable, "-m", "pvewatch", "demo", "--churn", "0", "--duration", "120"]
    proc = subprocess.Popen(
        [*demo, "--interval", "0.5"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        lines = Lines(proc)
        api = lines.wait(r"simulated PVE API : (https://\S+)/api2/json").group(1)
        lines.wait(rf"holds +: a stop is sent once it has lasted {DEMO_HOLD_SECS:g} s")
        listener = lines.wait(r"metrics and health: (http://\S+)/metrics").group(1)
        with httpx.Client(verify=False, timeout=10) as client:  # noqa: S501 — the simulator's
            deadline = time.monotonic() + 60
            while client.get(f"{listener}/readyz").status_code != 200:  # the baseline is in
                assert time.monotonic() < deadline, "the demo never became ready"
                time.sleep(0.1)
            rows = client.get(f"{api}/_sim/resources").json()
            guest = next(r for r in rows if r["type"] == "qemu" and r["status"] == "running")
            stopped = client.patch(
                f"{api}/_sim/resources/{guest['id']}", json={"status": "stopped"}
            )
            stopped.raise_for_status()
        lines.wait(rf" guest\.stopped {guest['id']}: VM {guest['vmid']} .* stopped")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
