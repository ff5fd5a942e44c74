"""Real captured `/cluster/resources` answers, served by the simulator and watched."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from pvewatch.lifecycle import daemon
from tests.e2e.harness import control, read_events, simulator, watcher_config

CAPTURED = Path(__file__).resolve().parents[2].parent / "shared" / "pve-api" / "captured"
FILES = sorted(p for p in CAPTURED.glob("*cluster-resources*.json") if ".raw." not in p.name)


def _flip(rows: list[dict[str, Any]]) -> tuple[str, dict[str, str], str]:
    """Pick a resource to change: (id, patch, expected event type)."""
    for row in rows:
        if row.get("type") in ("qemu", "lxc") and row.get("status") == "running":
            return row["id"], {"status": "stopped"}, "guest.stopped"
    for row in rows:
        if row.get("type") in ("qemu", "lxc") and row.get("status") == "stopped":
            return row["id"], {"status": "running"}, "guest.started"
    for row in rows:
        if row.get("type") == "node":
            return row["id"], {"status": "offline"}, "node.offline"
    # Only guests PVE has no metrics for (a new guest, or one on a silent node).
    guest = next(r for r in rows if r.get("type") in ("qemu", "lxc"))
    return guest["id"], {"status": "running"}, "guest.started"


def test_captured_files_exist() -> None:
    assert len(FILES) >= 10, f"expected the captured fixtures in {CAPTURED}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_replayed_capture_is_quiet_when_unchanged_and_exact_when_changed(
    path: Path, tmp_path: Path
) -> None:
    rows = json.loads(path.read_text())["data"]
    with simulator() as sim:
        with control(sim) as c:
            c.put("/resources", json=rows).raise_for_status()
        config = watcher_config(sim, tmp_path)
        events_file = tmp_path / "events.jsonl"
        assert asyncio.run(daemon.once(config)) == 0  # baseline
        assert asyncio.run(daemon.once(config)) == 0
        assert read_events(events_file) == [], "an unchanged capture produced events"
        resource_id, patch, expected = _flip(rows)
        with control(sim) as c:
            c.patch(f"/resources/{resource_id.lstrip('/')}", json=patch).raise_for_status()
        assert asyncio.run(daemon.once(config)) == 0
    events = read_events(events_file)
    if [e["type"] for e in events] == ["cluster.quorum_lost"]:
        # Two nodes, one offline: no quorum, and the node's event is attached to that one.
        events = events[0]["details"]["node_events"]
        assert [(e["type"], f"node/{e['node']}") for e in events] == [(expected, resource_id)]
        return
    assert [(e["type"], e["resource"]["id"]) for e in events] == [(expected, resource_id)]
