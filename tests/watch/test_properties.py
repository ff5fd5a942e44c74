"""Properties of normalize → carry_forward → diff over generated rows."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from pvewatch.model import Event, Resource, Snapshot
from pvewatch.watch.diff import diff
from pvewatch.watch.normalize import carry_forward

from .rows import NOW, poll, snap

GUEST_IDS = [("qemu", 100), ("qemu", 101), ("lxc", 200)]
OTHER_IDS: list[tuple[str, str, list[str | None]]] = [
    ("node/pve1", "node", ["online", "offline", "unknown", None]),
    ("node/pve2", "node", ["online", "offline"]),
    ("storage/pve1/local", "storage", ["available", "unknown"]),
    ("/pool/prod", "pool", [None]),
    ("sdn/pve1/lab", "sdn", ["ok", "error", "pending"]),
    ("network/pve1/fabric/u", "network", ["ok", "not ok"]),
    ("ceph/osd.1", "ceph", ["up", "down", None]),
]
GUEST_OPTIONAL = {
    "node": st.sampled_from(["pve1", "pve2"]),
    "name": st.sampled_from(["a", "b"]),
    "tags": st.sampled_from(["prod;web", "web,prod", "db", " ", "x+y;db"]),
    "lock": st.sampled_from(["backup", "create", "migrate"]),
    "hastate": st.sampled_from(["started", "fence", "recovery"]),
    "template": st.sampled_from([0, 1, True, "1"]),
    "pool": st.sampled_from(["p1", "p2"]),
    "cpu": st.floats(0, 1),
    "uptime": st.integers(0, 10**6),
}
GUEST_STATUSES = ["running", "stopped", "paused", "suspended", "io-error", "prelaunch", "unknown"]


@st.composite
def guest_row(draw: st.DrawFn) -> dict[str, Any]:
    kind, vmid = draw(st.sampled_from(GUEST_IDS))
    row: dict[str, Any] = {"id": f"{kind}/{vmid}", "type": kind, "vmid": vmid}
    row["status"] = draw(st.sampled_from(GUEST_STATUSES))
    return row | draw(st.fixed_dictionaries({}, optional=GUEST_OPTIONAL))


@st.composite
def other_row(draw: st.DrawFn) -> dict[str, Any]:
    rid, kind, statuses = draw(st.sampled_from(OTHER_IDS))
    row: dict[str, Any] = {"id": rid, "type": kind, "node": "pve1"}
    status = draw(st.sampled_from(statuses))
    return row if status is None else row | {"status": status}


snapshots = st.lists(st.one_of(guest_row(), other_row()), max_size=8).map(snap)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
known_keys = st.sampled_from(["type", "status", "node", "name", "vmid", "pool", "tags", "lock"])
more_keys = st.sampled_from(["hastate", "template", "content", "shared", "cpu", "level"])
any_row = st.fixed_dictionaries(
    {"id": st.sampled_from(["qemu/100", "lxc/100", "node/pve1", "/pool/x", "x", ""]) | json_values},
    optional={"status": st.sampled_from(["running", "unknown", "stopped"]) | json_values},
).flatmap(
    lambda base: st.dictionaries(
        known_keys | more_keys | st.text(max_size=6), json_values, max_size=6
    ).map(lambda extra: extra | base)
)
garbage_rows = st.lists(any_row | json_values, max_size=6)


@given(snapshots)
def test_a_snapshot_against_itself_gives_no_events(s: Snapshot) -> None:
    assert diff(s, s, NOW) == []


@given(snapshots, snapshots)
def test_diff_is_deterministic(old: Snapshot, new: Snapshot) -> None:
    reordered = Snapshot(new.cluster, dict(reversed(list(new.resources.items()))), new.taken_at)
    assert diff(old, new, NOW) == diff(old, reordered, NOW)


def watched(r: Resource) -> dict[str, Any]:
    if r.type in ("qemu", "lxc"):
        fields = ("status", "node", "name", "tags", "lock", "hastate", "template", "pool")
        return {f: getattr(r, f) for f in fields}
    return {} if r.type == "pool" else {"status": r.status}


def replay(old: Snapshot, new: Snapshot, events: list[Event]) -> dict[str, dict[str, Any]]:
    """Old's watched fields with each event's change applied; existence from the type."""
    state = {rid: watched(r) for rid, r in old.resources.items()}
    for e in events:
        assert e.resource is not None
        if e.type.endswith(".added"):
            state[e.resource.id] = watched(new.resources[e.resource.id])
        elif e.type.endswith(".removed"):
            del state[e.resource.id]
        else:
            assert e.change is not None
            value = e.change.new
            state[e.resource.id][e.change.field] = (
                tuple(value) if isinstance(value, list) else value
            )
    return state


def silent(field: str, old: Resource, new: Resource) -> bool:
    """The documented cases where a field differs without an event: "no information"."""
    no_info = (None, "unknown")
    if old.type not in ("qemu", "lxc"):
        return False
    if field == "status":
        return new.status in no_info or (old.status in no_info and new.status == "stopped")
    if field == "name":
        return old.name is None or new.name is None
    if field == "template":
        return old.status in no_info or new.status in no_info
    return False


@given(snapshots, snapshots)
def test_replaying_the_events_on_old_gives_new(old: Snapshot, raw_new: Snapshot) -> None:
    new = carry_forward(old, raw_new)
    state = replay(old, new, diff(old, new, NOW))
    assert state.keys() == new.resources.keys()
    for rid, fields in state.items():
        expected = watched(new.resources[rid])
        for field, value in expected.items():
            if rid in old.resources and silent(field, old.resources[rid], new.resources[rid]):
                continue
            assert fields[field] == value, (rid, field)


@given(garbage_rows, garbage_rows)
def test_no_row_shape_makes_the_pipeline_raise(first: list[Any], second: list[Any]) -> None:
    old = snap(first)
    new = poll(old, second)
    events = diff(old, new, NOW) + diff(None, new, NOW) + diff(new, old, NOW)
    for e in events:
        json.dumps(e.to_dict(), allow_nan=False)
    for r in new.resources.values():
        json.dumps(r.to_dict(), allow_nan=False)
