"""Helpers of the faults tests that are not the in-process daemon (see rig.py)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pvewatch.model import Event
from pvewatch.simulator.server import SimServer
from tests.e2e.harness import control
from tests.need import need


def start_guest(sim: SimServer) -> str:
    """Start a stopped guest (a start is sent at once: no hold); its id."""
    with control(sim) as c:
        rows = c.get("/resources").json()
        guest = str(next(r["id"] for r in rows if r.get("status") == "stopped"))
        c.patch(f"/resources/{guest}", json={"status": "running"}).raise_for_status()
    return guest


def types(events: Sequence[Event]) -> list[tuple[str, str | None]]:
    return [(e.type, e.resource.id if e.resource else None) for e in events]


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)


@contextmanager
def mounted(target: Path, *options: str) -> Iterator[None]:
    """A mount on `target` for the test's duration; `need`s root and a kernel that lets it
    mount (tests.need: a skip elsewhere, a failure under CI=true)."""
    done = run("mount", *options, str(target)) if os.geteuid() == 0 else None
    if done is None or done.returncode != 0:
        need(f"cannot mount here ({done.stderr.strip() if done else 'not root'})")
    try:
        yield
    finally:
        run("umount", "-l", str(target))


def cluster_entry(name: str, sim: SimServer, **extra: object) -> dict[str, object]:
    """One `clusters:` entry of a config file for `sim`: its certificate pinned, polled
    every second (add the credentials in `extra`)."""
    assert sim.fingerprint is not None
    entry: dict[str, object] = {
        "name": name,
        "endpoints": [sim.url],
        "tls": {"fingerprint": sim.fingerprint},
        "interval_secs": 1,
        "timeout_secs": 2,
    }
    return entry | extra


def write_config(
    tmp: Path, clusters: list[dict[str, object]], sinks: dict[str, object], **more: object
) -> Path:
    """watch.yaml in `tmp` (JSON is YAML): the store in `tmp`, no listener, and `sinks`
    beside `events`, a JSON log sink to tmp/events.jsonl; `more` adds or replaces keys."""
    config = {
        "clusters": clusters,
        "store": {"path": str(tmp / "state.db")},
        "http": {"listen": None},
        "sinks": {"events": {"type": "log", "format": "json", "path": str(tmp / "events.jsonl")}}
        | sinks,
    } | more
    path = tmp / "watch.yaml"
    path.write_text(json.dumps(config))
    return path
