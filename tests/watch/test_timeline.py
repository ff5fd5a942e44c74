"""Polls over time, as the daemon runs them: normalize → carry_forward → diff."""

from __future__ import annotations

from datetime import timedelta

from pvewatch.model import Event, Snapshot
from pvewatch.watch.diff import diff

from .rows import NOW, Row, ct, node, poll, skeletal, snap, storage, vm


def run(polls: list[list[Row]]) -> list[list[Event]]:
    """The events of each poll after the first (the baseline)."""
    state: Snapshot | None = None
    out: list[list[Event]] = []
    for i, rows in enumerate(polls):
        now = NOW + timedelta(seconds=10 * i)
        new = poll(state, rows, now)
        if state is not None:
            out.append(diff(state, new, now))
        state = new
    return out


def summaries(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.type, e.summary) for e in events]


def test_offline_node_gives_node_offline_then_guest_stopped_only_when_known() -> None:
    guests = [
        vm(103, name="ci-runner", node="pve3", lock="backup"),
        ct(201, name="proxy01", node="pve3"),
    ]
    healthy = [node("pve1"), node("pve3"), storage(on="pve3"), *guests]
    stale = [node("pve1"), node("pve3", status="offline", uptime=None), storage(on="pve3"), *guests]
    skeletal_rows = [
        node("pve1"),
        node("pve3", status="offline", uptime=None, level=None),
        storage(on="pve3", status="unknown", disk=None),
        *(skeletal(g) for g in guests),
    ]
    back = [
        node("pve1"),
        node("pve3"),
        storage(on="pve3"),
        vm(103, name="ci-runner", node="pve3", status="stopped", lock="backup"),
        ct(201, name="proxy01", node="pve3"),
    ]
    went_offline, at_unknown, still_unknown, came_back = run(
        [healthy, stale, skeletal_rows, skeletal_rows, back]
    )
    assert summaries(went_offline) == [("node.offline", "node pve3 went offline")]
    assert summaries(at_unknown) == [
        ("storage.unavailable", "storage local-lvm on pve3 became unavailable")
    ]
    assert still_unknown == []
    assert summaries(came_back) == [
        ("node.online", "node pve3 came online"),
        ("guest.stopped", "VM 103 (ci-runner) on pve3 stopped"),
        ("storage.available", "storage local-lvm on pve3 became available"),
    ]


def test_new_guest_unknown_with_create_lock_then_stopped() -> None:
    unknown = {
        "id": "qemu/105",
        "vmid": 105,
        "type": "qemu",
        "node": "pve1",
        "status": "unknown",
        "lock": "create",
    }
    created, ready = run(
        [[node()], [node(), unknown], [node(), vm(105, name="new-vm", status="stopped")]]
    )
    assert summaries(created) == [("guest.added", "VM 105 on pve1 added")]
    assert summaries(ready) == [("guest.lock_changed", "VM 105 (new-vm) lock cleared (was create)")]


def test_guest_recovered_by_ha_onto_another_node_while_unknown() -> None:
    ha = vm(100, hastate="started", node="pve3")
    moved = skeletal(ha, node="pve1", hastate="recovery")
    migrated, settled = run([[ha], [moved], [vm(100, hastate="started", node="pve1")]])
    assert [e.type for e in migrated] == ["guest.migrated", "guest.ha_state_changed"]
    assert summaries(settled) == [
        ("guest.ha_state_changed", "VM 100 (web1) HA state changed from recovery to started")
    ]


def test_restart_catch_up_marks_events_late() -> None:
    stored = snap([vm(), node()])
    after_restart = poll(stored, [vm(status="stopped"), node()])
    (event,) = diff(stored, after_restart, NOW, late=True)
    assert (event.type, event.detected_late) == ("guest.stopped", True)
