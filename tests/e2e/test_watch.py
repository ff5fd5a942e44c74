"""`pvewatch run` against the simulator on a real socket (HTTPS, pinned fingerprint)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from tests.e2e.harness import (
    baseline_recorded,
    control,
    polls_served,
    read_events,
    running_watcher,
    simulator,
    wait_for,
    watcher_config,
)


def _events_for(path: Path, resource_id: str) -> list[dict[str, Any]]:
    return [e for e in read_events(path) if e["resource"] and e["resource"]["id"] == resource_id]


def _make_running(sim: Any, vmid: int = 100) -> None:
    with control(sim) as c:
        c.patch(f"/resources/qemu/{vmid}", json={"status": "running"}).raise_for_status()


def test_first_start_is_baseline_then_a_stop_is_one_event(tmp_path: Path) -> None:
    with simulator() as sim:
        _make_running(sim)
        config = watcher_config(sim, tmp_path)
        events_file = tmp_path / "events.jsonl"
        with running_watcher(config):
            wait_for(lambda: baseline_recorded(config), what="the baseline")
            with control(sim) as c:
                c.patch("/resources/qemu/100", json={"status": "stopped"}).raise_for_status()
            stopped = wait_for(
                lambda: _events_for(events_file, "qemu/100"), what="the guest.stopped event"
            )
            # A few more polls must not repeat it.
            served = polls_served(sim)
            wait_for(
                lambda: polls_served(sim) >= served + 3,
                what="three more polls",
            )
        events = read_events(events_file)
    assert [e["type"] for e in events] == ["guest.stopped"], "baseline emitted events"
    (event,) = stopped
    assert event["change"] == {"field": "status", "old": "running", "new": "stopped"}
    assert event["cluster"] == "e2e"
    assert event["detected_late"] is False
    # No task explains it: the rules say so (tests/e2e/test_rules_e2e.py has the rest).
    assert event["summary"].endswith("stopped unexpectedly")
    assert event["cause"]["kind"] == "unplanned"


def test_migration_is_one_guest_migrated_event(tmp_path: Path) -> None:
    with simulator() as sim:
        config = watcher_config(sim, tmp_path)
        events_file = tmp_path / "events.jsonl"
        with control(sim) as c:
            row = c.get("/resources").json()
        guest = next(r for r in row if r["id"] == "qemu/100")
        target = next(r["node"] for r in row if r["type"] == "node" and r["node"] != guest["node"])
        with running_watcher(config):
            wait_for(lambda: baseline_recorded(config), what="the baseline")
            with control(sim) as c:
                c.patch("/resources/qemu/100", json={"node": target}).raise_for_status()
            wait_for(lambda: _events_for(events_file, "qemu/100"), what="the migration event")
            served = polls_served(sim)
            wait_for(
                lambda: polls_served(sim) >= served + 2,
                what="two more polls",
            )
    (event,) = _events_for(events_file, "qemu/100")
    assert event["type"] == "guest.migrated"
    assert event["change"] == {"field": "node", "old": guest["node"], "new": target}
    assert event["resource"]["node"] == target


def test_change_while_stopped_is_reported_late_once_after_restart(tmp_path: Path) -> None:
    with simulator() as sim:
        _make_running(sim)
        config = watcher_config(sim, tmp_path)
        events_file = tmp_path / "events.jsonl"
        with running_watcher(config):
            wait_for(lambda: baseline_recorded(config), what="the baseline")
        with control(sim) as c:
            c.patch("/resources/qemu/100", json={"status": "stopped"}).raise_for_status()
        assert read_events(events_file) == []
        with running_watcher(config):
            wait_for(lambda: _events_for(events_file, "qemu/100"), what="the late event")
            served = polls_served(sim)
            wait_for(
                lambda: polls_served(sim) >= served + 2,
                what="two more polls",
            )
        with running_watcher(config):  # a second restart must not report it again
            served = polls_served(sim)
            wait_for(
                lambda: polls_served(sim) >= served + 2,
                what="two polls after the second restart",
            )
    (event,) = read_events(events_file)
    assert event["type"] == "guest.stopped"
    assert event["detected_late"] is True


def test_api_faults_give_one_unreachable_and_one_recovered_and_no_guest_events(
    tmp_path: Path,
) -> None:
    with simulator() as sim:
        config = watcher_config(sim, tmp_path, threshold=2)
        events_file = tmp_path / "events.jsonl"
        with running_watcher(config):
            wait_for(lambda: baseline_recorded(config), what="the baseline")
            for fault in (
                {"kind": "status", "code": 500, "count": 6},
                {"kind": "garbage", "count": 6},
                {"kind": "status", "code": 595, "count": 6},
                {"kind": "delay", "seconds": 3, "count": 4},
                {"kind": "reset", "count": 6},
            ):
                expected = len(read_events(events_file)) + 2
                with control(sim) as c:
                    c.post("/faults", json=fault).raise_for_status()

                def outage_reported(expected: int = expected) -> bool:
                    return len(read_events(events_file)) >= expected

                wait_for(outage_reported, timeout=30, what=f"the events of the outage {fault}")
        events = read_events(events_file)
    types = [e["type"] for e in events]
    assert types == ["source.unreachable", "source.recovered"] * 5
    for event in events:
        assert "e2e" in event["summary"]
        assert "5d0b8a52" not in str(event), "the token leaked into an event"


def test_one_process_watches_several_clusters_at_once(tmp_path: Path) -> None:
    import dataclasses

    with simulator() as first, simulator(seed=8) as second:
        one = watcher_config(first, tmp_path)
        two = watcher_config(second, tmp_path)
        config = dataclasses.replace(
            one,
            clusters=(
                dataclasses.replace(one.clusters[0], name="alpha"),
                dataclasses.replace(two.clusters[0], name="beta"),
            ),
        )
        events_file = tmp_path / "events.jsonl"
        _make_running(first)
        _make_running(second)
        with running_watcher(config):
            for cluster in config.clusters:
                single = dataclasses.replace(config, clusters=(cluster,))
                wait_for(partial(baseline_recorded, single), what=f"{cluster.name}'s baseline")
            for sim in (first, second):
                with control(sim) as c:
                    c.patch("/resources/qemu/100", json={"status": "stopped"}).raise_for_status()
            wait_for(lambda: len(read_events(events_file)) >= 2, what="one event per cluster")
    events = read_events(events_file)
    assert sorted((e["cluster"], e["type"], e["resource"]["id"]) for e in events) == [
        ("alpha", "guest.stopped", "qemu/100"),
        ("beta", "guest.stopped", "qemu/100"),
    ]
