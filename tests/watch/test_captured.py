"""Every real /cluster/resources capture (shared/pve-api/captured) through the pipeline."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pvewatch.model import Resource, Snapshot
from pvewatch.watch.diff import diff
from pvewatch.watch.normalize import COUNTER_FIELDS

from .rows import CAPTURED, NOW, load_captured, poll, snap

FILES = sorted(CAPTURED.glob("*cluster-resources*.json"))
LATER = NOW + timedelta(seconds=10)


def test_captures_are_found() -> None:
    assert len(FILES) >= 10, f"no captures under {CAPTURED}"


def next_poll(rows: list[Any], seed: int) -> list[Any]:
    """The same cluster 10 s later: counters moved, rows and list items reordered."""
    rng = random.Random(seed)
    moved = []
    for row in rows:
        row = dict(row)
        for key in COUNTER_FIELDS & row.keys():
            row[key] = row[key] + rng.randint(1, 1000)
        for key in ("content", "tags"):
            if isinstance(row.get(key), str):
                items = row[key].split(";" if key == "tags" else ",")
                rng.shuffle(items)
                row[key] = (";" if key == "tags" else ",").join(items)
        moved.append(row)
    rng.shuffle(moved)
    return moved


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_capture_normalizes_and_an_unchanged_poll_gives_no_events(path: Path) -> None:
    rows = load_captured(path)
    first = snap(rows)
    assert len(first.resources) == len({row["id"] for row in rows})
    for r in first.resources.values():
        assert not COUNTER_FIELDS & set(r.attrs)
    second = poll(first, next_poll(rows, seed=len(rows)), LATER)
    assert diff(first, second, LATER) == []


def flip(r: Resource) -> tuple[str, str, str]:
    """A status change of the first guest (or node) and the event it must give."""
    if r.type == "node":
        return "online", "offline", "node.offline"
    if r.status == "running":
        return "running", "stopped", "guest.stopped"
    return str(r.status), "running", "guest.started"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_one_status_change_gives_exactly_its_event(path: Path) -> None:
    rows = load_captured(path)
    first = snap(rows)
    subject = pick_subject(first)
    old_status, new_status, expected = flip(subject)
    changed = [dict(row, status=new_status) if row["id"] == subject.id else row for row in rows]
    events = diff(first, poll(first, changed, LATER), LATER)
    assert [(e.type, e.resource.id if e.resource else None) for e in events] == [
        (expected, subject.id)
    ]
    assert events[0].change is not None
    assert (events[0].change.old, events[0].change.new) == (old_status, new_status)


def pick_subject(s: Snapshot) -> Resource:
    ordered = sorted(s.resources.values(), key=lambda r: r.id)
    guests = [r for r in ordered if r.type in ("qemu", "lxc") and r.status != "unknown"]
    return (guests or [r for r in ordered if r.type == "node"] or ordered)[0]


def test_capture_details_survive_normalization() -> None:
    gopx = snap(load_captured(CAPTURED / "gopx-pve7-cluster-resources.json")).resources
    assert gopx["qemu/102"].tags == ("go-proxmox+cloud-init",)
    assert gopx["qemu/101"].template is True
    yan = snap(load_captured(CAPTURED / "yanboyang-pve9-cluster-resources-type-vm.json"))
    assert ("alpine", "community-script", "docker") in {r.tags for r in yan.resources.values()}
    raw = snap(load_captured(CAPTURED / "yanboyang-pve9-cluster-resources-type-vm.raw.json"))
    assert raw.resources == yan.resources
    doug = snap(load_captured(CAPTURED / "dougiteixeira-pve8-cluster-resources.json")).resources
    local = next(r for r in doug.values() if r.type == "storage" and len(r.content) == 6)
    assert local.content == ("backup", "images", "iso", "rootdir", "snippets", "vztmpl")
    lucas = snap(load_captured(CAPTURED / "pruebalucas-pve922-cluster-resources.json")).resources
    net = lucas["network/pve/zone/localnetwork"]
    assert (net.type, net.attrs["network-type"], net.status) == ("network", "zone", "ok")
    assert lucas["node/pve"].hastate == "online"
    unknown = snap(load_captured(CAPTURED / "fog-pve51-cluster-resources-type-vm-unknown.json"))
    r = unknown.resources["qemu/100"]
    assert (r.status, r.name, r.vmid, r.node) == ("unknown", None, 100, "pve")


def test_new_vm_from_fog_capture_unknown_then_running() -> None:
    baseline = snap([])
    created = poll(
        baseline, load_captured(CAPTURED / "fog-pve51-cluster-resources-type-vm-unknown.json")
    )
    running = load_captured(CAPTURED / "fog-pve51-cluster-resources-type-vm-qemu-running.json")
    assert [e.type for e in diff(baseline, created, NOW)] == ["guest.added"]
    events = diff(created, poll(created, running, LATER), LATER)
    assert [(e.type, e.summary) for e in events] == [
        ("guest.started", "VM 100 on pve started")  # PVE's default name, said once
    ]
