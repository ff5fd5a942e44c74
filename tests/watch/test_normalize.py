from __future__ import annotations

from typing import Any

import pytest

from pvewatch.model import Resource
from pvewatch.watch.normalize import COUNTER_FIELDS, carry_forward, implausible, normalize

from .rows import NOW, Row, ct, node, pool, skeletal, snap, storage, vm


def one(row: object) -> Resource:
    resources = snap([row]).resources
    assert len(resources) == 1
    return next(iter(resources.values()))


def test_guest_row_keeps_identity_and_labels_and_drops_counters() -> None:
    r = one(vm(100, pool="production", tags="prod;web", hastate="started", lock="backup"))
    assert r == Resource(
        id="qemu/100",
        type="qemu",
        status="running",
        node="pve1",
        name="web1",
        vmid=100,
        pool="production",
        tags=("prod", "web"),
        lock="backup",
        hastate="started",
        template=False,
    )


def test_snapshot_is_keyed_by_pve_id_and_carries_cluster_and_time() -> None:
    s = normalize("prod", [vm(100), node("pve1"), pool("production")], NOW)
    assert s.cluster == "prod"
    assert s.taken_at == NOW
    assert set(s.resources) == {"qemu/100", "node/pve1", "/pool/production"}


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ("prod;web", ("prod", "web")),
        ("web;prod", ("prod", "web")),
        ("web, prod", ("prod", "web")),
        ("web prod\tdb", ("db", "prod", "web")),
        (" web ;; web; ", ("web",)),
        ("go-proxmox+cloud-init", ("go-proxmox+cloud-init",)),
        ("", ()),
        (None, ()),
        (5, ("5",)),
        (["b", "a", 3], ("3", "a", "b")),
        ({"a": 1}, ()),
        (1.5, ()),
    ],
)
def test_tags_are_split_stripped_deduplicated_sorted(
    tags: object, expected: tuple[str, ...]
) -> None:
    assert one(vm(tags=tags)).tags == expected


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("backup,images,vztmpl,snippets,iso,rootdir", ("backup", "images", "iso")),
        ("backup,snippets,iso,images,vztmpl,rootdir", ("backup", "images", "iso")),
        ("images, rootdir,images", ("images", "rootdir")),
        ("", ()),
    ],
)
def test_storage_content_is_a_sorted_set(content: str, expected: tuple[str, ...]) -> None:
    assert one(storage(content=content)).content[: len(expected)] == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, True),
        (0, False),
        (True, True),
        (False, False),
        ("1", True),
        ("0", False),
        ("true", True),
        ("false", False),
        ("", False),
        (None, False),
        ([1], False),
        (2, False),
    ],
)
def test_template_and_shared_accept_0_1_and_true_false(value: object, expected: bool) -> None:
    assert one(vm(template=value)).template is expected
    assert one(storage(shared=value)).attrs.get("shared", False) is expected


@pytest.mark.parametrize(
    ("vmid", "expected"),
    [
        (100, 100),
        ("101", 101),
        (102.0, 102),
        ("abc", 100),
        (None, 100),
        (True, 100),
        ("9" * 50, 100),
        (float("inf"), 100),
        ([1], 100),
    ],
)
def test_vmid_is_coerced_or_taken_from_the_id(vmid: object, expected: int) -> None:
    row = vm(100)
    row["vmid"] = vmid
    assert one(row).vmid == expected


def test_stable_fields_become_attrs_and_counters_are_dropped() -> None:
    r = one(node("pve1", hastate="online", **{"host-arch": "aarch64"}))
    assert r.attrs == {"cgroup-mode": 2, "host-arch": "aarch64", "level": ""}
    assert r.hastate == "online"
    s = one(storage())
    assert s.attrs == {"plugintype": "lvmthin", "shared": False, "storage": "local-lvm"}
    assert not (set(r.attrs) | set(s.attrs)) & COUNTER_FIELDS


def test_unknown_fields_and_types_pass_through_with_scalar_values_only() -> None:
    row: Row = {"id": "ceph/osd.1", "status": "up", "weight": 1.5, "nested": {"a": 1}}
    row |= {"list": [1], "nan": float("nan"), "flag": True, "none": None, "pressurecpusome": 0.3}
    r = one(row)
    assert (r.type, r.status) == ("ceph", "up")
    assert r.attrs == {"flag": True, "none": None, "weight": 1.5}


@pytest.mark.parametrize(
    "row",
    [
        "qemu/100",
        None,
        42,
        [vm()],
        {"type": "qemu", "vmid": 100},
        {"id": 100},
        {"id": ""},
        {"id": None},
        {1: "qemu/100"},
    ],
)
def test_rows_without_a_usable_id_are_skipped(row: object) -> None:
    assert snap([row, node()]).resources.keys() == {"node/pve1"}


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("name", 123, "123"),
        ("name", "", None),
        ("name", ["x"], None),
        ("status", 0.5, None),
        ("node", {"n": 1}, None),
        ("lock", False, None),
        ("type", None, "qemu"),
        ("type", 7, "7"),
    ],
)
def test_wrong_typed_fields_are_coerced_or_dropped(
    field: str, value: Any, expected: object
) -> None:
    row = vm()
    row[field] = value
    assert getattr(one(row), field) == expected


def test_duplicate_ids_last_wins() -> None:
    s = snap([vm(100, name="first"), vm(100, name="second")])
    assert s.resources["qemu/100"].name == "second"


def test_pool_id_with_leading_slash() -> None:
    r = one({"id": "/pool/dept/team", "pool": "dept/team"})
    assert (r.type, r.pool, r.status) == ("pool", "dept/team", None)


# carry_forward: a guest's "unknown" is no information, everything else is real.


def test_unknown_guest_keeps_last_known_status_name_and_template() -> None:
    old = snap([vm(100, template=1, status="stopped"), ct(200, lock="backup")])
    new = carry_forward(old, snap([skeletal(vm(100)), skeletal(ct(200, lock="backup"))]))
    assert new.resources["qemu/100"] == old.resources["qemu/100"]
    carried = new.resources["lxc/200"]
    assert (carried.status, carried.name, carried.lock) == ("running", "dns01", "backup")


def test_unknown_guest_takes_config_fields_from_the_new_row() -> None:
    old = snap([vm(100, tags="web", lock="backup", node="pve3")])
    new = carry_forward(old, snap([skeletal(vm(100, tags="db", node="pve1"))]))
    r = new.resources["qemu/100"]
    assert (r.status, r.node, r.tags, r.lock) == ("running", "pve1", ("db",), None)


@pytest.mark.parametrize(
    ("old_rows", "new_row"),
    [
        ([], skeletal(vm(100))),  # brand-new guest: nothing to carry
        ([skeletal(vm(100))], skeletal(vm(100))),  # never known
        ([node("pve3")], node("pve3", status="unknown")),  # a node's unknown is real
        ([storage()], storage(status="unknown")),
    ],
)
def test_nothing_is_carried_without_a_known_guest_status(old_rows: list[Row], new_row: Row) -> None:
    new = snap([new_row])
    assert carry_forward(snap(old_rows), new) is new
    assert carry_forward(None, new) is new


CLUSTER_ROWS = [node("pve1"), vm(100), ct(200), storage(), pool("production")]


@pytest.mark.parametrize(
    ("old_rows", "rows", "problem"),
    [
        (CLUSTER_ROWS, [], "empty list"),  # {"data": []} from a cluster that had nodes
        (CLUSTER_ROWS, [vm(100), storage()], "lists no node"),
        (CLUSTER_ROWS, [node("pve1"), vm(100, node=None)], "item 1 ('qemu/100') has no `node`"),
        (CLUSTER_ROWS, [node("pve1", status=None)], "item 0 ('node/pve1') has no `status`"),
        (CLUSTER_ROWS, [node("pve1"), ct(200, node="")], "has no `node`"),
        (CLUSTER_ROWS, [node("pve1"), storage(status=False)], "has no `status`"),
        (CLUSTER_ROWS, [node("pve1"), storage(node=["pve1"])], "has no `node`"),
        (None, [node("pve1", status={"x": 1})], "has no `status`"),
        (None, [], "empty list"),  # an empty baseline would make everything "added" later
        ([], [], "empty list"),
    ],
)
def test_answers_pve_cannot_give_are_implausible(
    old_rows: list[Row] | None, rows: list[Row], problem: str
) -> None:
    old = None if old_rows is None else snap(old_rows)
    found = implausible(old, rows)
    assert found is not None
    assert problem in found


@pytest.mark.parametrize(
    ("old_rows", "rows"),
    [
        ([vm(100)], [vm(100)]),  # a `type=vm` answer (a captured one) never had nodes
        (None, [vm(100)]),
        (CLUSTER_ROWS, [node("pve1"), vm(100, status=None)]),  # no status: no information
        (CLUSTER_ROWS, [node("pve1", status="offline"), skeletal(vm(100)), pool("production")]),
        (CLUSTER_ROWS, [node("pve1"), {"id": "x/1", "type": "ceph"}, "junk", 5]),
        (CLUSTER_ROWS, [node("pve1"), {"id": "x/2", "type": ["qemu"]}]),  # found by fuzzing
        (CLUSTER_ROWS, [{"id": "node/7", "type": "node", "node": 7, "status": "online"}]),
    ],
)
def test_real_answers_are_plausible(old_rows: list[Row] | None, rows: list[Any]) -> None:
    assert implausible(None if old_rows is None else snap(old_rows), rows) is None


def test_a_guest_row_without_status_is_no_information() -> None:
    old = snap([vm(100, status="running")])
    new = carry_forward(old, snap([vm(100, status=None)]))
    assert new.resources["qemu/100"].status == "running"
