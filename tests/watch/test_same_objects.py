"""A quiet poll's resources are last poll's objects (Normalizer reuses them): diff,
carry_forward and the store's changed rows then short-cut by identity. Whatever the
objects, they give what equal copies of them give, which take the long way."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvewatch.model import Resource, Snapshot, same_resources
from pvewatch.store.rows import changed_resources
from pvewatch.watch.diff import diff
from pvewatch.watch.normalize import carry_forward

from .rows import NOW, node, snap, vm
from .test_properties import snapshots


def shared(old: Snapshot, new: Snapshot, order: list[int]) -> Snapshot:
    """`new` as Normalizer gives it: a resource equal to the one before is that object;
    in the order `order` draws."""
    items = list(new.resources.items())
    items = [items[i] for i in sorted(range(len(items)), key=lambda i: order[i % len(order)])]
    resources = {rid: r if old.resources.get(rid) != r else old.resources[rid] for rid, r in items}
    return Snapshot(new.cluster, resources, new.taken_at)


def copied(s: Snapshot) -> Snapshot:
    """Equal resources, none of them the same object: no short cut applies."""
    return Snapshot(s.cluster, {rid: replace(r) for rid, r in s.resources.items()}, s.taken_at)


def fewer(s: Snapshot) -> Snapshot:
    return Snapshot(s.cluster, dict(list(s.resources.items())[1:]), s.taken_at)


@given(
    snapshots,
    snapshots,
    st.sampled_from(["quiet", "fewer", "other"]),
    st.lists(st.integers(), min_size=1),
)
def test_the_same_objects_give_what_equal_copies_give(
    old: Snapshot, other: Snapshot, poll: str, order: list[int]
) -> None:
    new = shared(old, {"quiet": old, "fewer": fewer(old), "other": other}[poll], order)
    assert same_resources(old.resources, new.resources) or poll != "quiet"
    slow = copied(new)
    assert diff(old, new, NOW) == diff(old, slow, NOW)
    assert repr(carry_forward(old, new)) == repr(carry_forward(old, slow))
    carried = carry_forward(old, new)
    assert diff(old, carried, NOW) == diff(old, carry_forward(old, slow), NOW)
    assert changed_resources("c", new.resources, old.resources) == changed_resources(
        "c", slow.resources, old.resources
    )


def test_a_quiet_poll_with_an_unknown_guest_carries_what_was_known() -> None:
    before = snap([vm(100, status="unknown"), vm(101), node("pve1")])
    old = carry_forward(snap([vm(100), vm(101), node("pve1")]), before)
    new = Snapshot("demo", dict(before.resources), NOW)  # the same objects as `before`
    assert carry_forward(old, new).resources["qemu/100"].status == "running"
    assert diff(old, carry_forward(old, new), NOW) == []


a, b = Resource("qemu/1", "qemu"), Resource("qemu/2", "qemu")


@pytest.mark.parametrize(
    ("left", "right", "same"),
    [
        ({"qemu/1": a, "qemu/2": b}, {"qemu/2": b, "qemu/1": a}, True),  # any order
        ({}, {}, True),
        ({"qemu/1": a}, {"qemu/1": replace(a)}, False),  # equal, not the same object
        ({"qemu/1": a}, {"qemu/1": a, "qemu/2": b}, False),  # one more
        ({"qemu/1": a, "qemu/2": b}, {"qemu/1": a}, False),  # one fewer
        ({"qemu/1": a}, {"qemu/2": a}, False),  # another id
    ],
)
def test_same_resources_table(
    left: dict[str, Resource], right: dict[str, Resource], same: bool
) -> None:
    assert same_resources(left, right) is same
    assert same_resources(right, left) is same
