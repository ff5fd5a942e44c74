"""StableRows: the typed form of a poll's rows gives what the dicts give, exactly.

`exact()` compares snapshots by repr, so that 1, 1.0 and True (equal in Python) and the
order of the resources count as differences too.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvewatch.model import Resource, Snapshot
from pvewatch.watch.normalize import COUNTER_FIELDS, Normalizer, implausible, normalize
from pvewatch.watch.rows import StableRows

from .rows import NOW, node, storage, vm

ABSENT = object()
FIELDS: tuple[str, ...] = (
    *("id", "type", "status", "node", "name", "vmid", "pool", "tags", "lock", "hastate"),
    *("template", "content", "storage", "plugintype", "shared", "level", "cgroup-mode"),
)


def stable(rows: list[dict[str, Any]], fields: tuple[str, ...] = FIELDS) -> StableRows:
    """The rows as a typed decoder gives them: stable fields only, ABSENT where absent."""
    for row in rows:
        assert row.keys() - COUNTER_FIELDS <= set(fields), "a decoder would refuse the row"
    return StableRows(fields, [tuple(r.get(f, ABSENT) for f in fields) for r in rows], ABSENT)


def exact(snapshot: Snapshot | Resource) -> str:
    return repr(snapshot)


# Values under the contract of StableRows: str, int (not bool), None; few, so polls repeat.
labels = st.sampled_from(["", "running", "stopped", "unknown", "pve1", "pve2", "1", "a;b"])
values = labels | st.integers(-1, 3) | st.integers() | st.none()
ids = st.sampled_from(["qemu/100", "lxc/101", "node/pve1", "storage/pve1/local", "/pool/x", ""])
kinds = st.sampled_from(["qemu", "lxc", "node", "storage", "pool", "sdn", ""])
counters = st.dictionaries(st.sampled_from(sorted(COUNTER_FIELDS)), st.floats() | st.booleans())
contract_row = st.fixed_dictionaries(
    {"id": ids, "type": kinds},
    optional={f: values for f in FIELDS[2:]},
).flatmap(lambda row: counters.map(lambda c: c | row))


@given(
    st.lists(contract_row, min_size=1, max_size=6).flatmap(
        lambda pool: st.lists(
            st.tuples(st.lists(st.sampled_from(pool), max_size=8), st.booleans()), max_size=5
        )
    )
)
def test_poll_after_poll_stable_rows_give_what_normalize_gives(
    polls: list[tuple[list[dict[str, Any]], bool]],
) -> None:
    normalizer = Normalizer()
    for rows, typed in polls:  # typed and dict polls in any order, on one normalizer
        got = normalizer("c", stable(rows) if typed else rows, NOW)
        assert exact(got) == exact(normalize("c", rows, NOW))


@given(st.lists(contract_row, max_size=6), st.lists(contract_row, max_size=4))
def test_implausible_says_of_stable_rows_what_it_says_of_the_dicts(
    rows: list[dict[str, Any]], before: list[dict[str, Any]]
) -> None:
    old = normalize("c", before, NOW)
    assert implausible(old, stable(rows)) == implausible(old, rows)
    assert implausible(None, stable(rows)) == implausible(None, rows)


def test_an_unchanged_row_gives_the_resource_of_last_time() -> None:
    normalizer = Normalizer()
    first = normalizer("c", stable([vm(100, cpu=0.1), node("pve1")]), NOW)
    second = normalizer("c", stable([vm(100, cpu=0.7), node("pve1")]), NOW)
    assert second.resources["qemu/100"] is first.resources["qemu/100"]
    assert second.resources["node/pve1"] is first.resources["node/pve1"]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ({"status": "running"}, {"status": "stopped"}),
        ({"storage": None}, {}),  # null is kept in attrs, absent is not
        ({"level": "c"}, {"level": None}),
        ({"name": "1"}, {"name": 1}),  # the same label, but not the same row
        ({"shared": 0}, {"shared": 1}),
    ],
)
def test_a_changed_row_is_normalized_again(before: dict[str, Any], after: dict[str, Any]) -> None:
    normalizer = Normalizer()
    first = normalizer("c", stable([vm(100) | before]), NOW)
    rows = [vm(100) | after]
    second = normalizer("c", stable(rows), NOW)
    assert second.resources["qemu/100"] is not first.resources["qemu/100"]
    assert exact(second) == exact(normalize("c", rows, NOW))


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ([], "the answer is an empty list (PVE always lists its nodes)"),
        ([vm(100, node="")], "item 0 ('qemu/100') has no `node`"),
        ([node("pve1"), storage("local", status=None)], "item 1 ("),
        ([vm(100)], None),  # no node, but none before either
        ([node("pve1", node=7)], None),  # an int is a label: the dict path decides
    ],
)
def test_implausible_stable_rows_table(rows: list[dict[str, Any]], problem: str | None) -> None:
    answer = implausible(None, stable(rows))
    assert answer == implausible(None, rows)
    assert answer == problem or (problem is not None and answer and answer.startswith(problem))


def test_no_node_after_nodes_is_implausible_for_stable_rows_too() -> None:
    old = normalize("c", [node("pve1"), vm(100)], NOW)
    assert implausible(old, stable([vm(100)])) == (
        "the answer lists no node at all (PVE always lists its nodes)"
    )


def test_row_gives_the_dict_without_absent_fields() -> None:
    rows = stable([{"id": "qemu/1", "type": "qemu", "name": None, "vmid": 1, "cpu": 0.5}])
    assert rows.row(0) == {"id": "qemu/1", "type": "qemu", "name": None, "vmid": 1}
    assert rows.dicts() == [rows.row(0)]


def test_other_fields_than_last_poll_forget_what_was_known() -> None:
    normalizer = Normalizer()
    first = normalizer("c", stable([vm(100)]), NOW)
    again = normalizer("c", stable([vm(100)], (*FIELDS, "sdn")), NOW)
    assert again.resources["qemu/100"] is not first.resources["qemu/100"]
    assert exact(again) == exact(first)


def made(row: dict[str, Any]) -> Any:
    return normalize("c", [row], NOW).resources.get(row["id"])


@pytest.mark.parametrize(
    "after",
    [
        [vm(100)],  # unchanged
        [vm(101)],  # one went away (and nothing changed)
        [vm(100, status="stopped")],
        [vm(100), vm(100, status="stopped"), vm(100)],  # the last row of an id wins
    ],
)
def test_reuse_knows_next_time_the_rows_of_this_poll_only(after: list[dict[str, Any]]) -> None:
    _, known = stable([vm(100), vm(101)]).reuse({}, made)
    resources, known = stable(after).reuse(known, made)
    assert known.keys() == resources.keys()
    for values, resource in known.values():  # each pair holds: values → resource
        row = {k: v for k, v in zip(FIELDS, values, strict=True) if v is not ABSENT}
        assert exact(made(row)) == exact(resource)


def test_a_quiet_poll_in_the_same_order_gives_the_mapping_of_last_time() -> None:
    normalizer = Normalizer()
    first = normalizer("c", stable([vm(100, cpu=0.1), node("pve1")]), NOW)
    second = normalizer("c", stable([vm(100, cpu=0.7), node("pve1")]), NOW)
    assert second.resources is first.resources
    rows = [node("pve1"), vm(100)]  # another order: the same objects, in this order
    third = normalizer("c", stable(rows), NOW)
    assert third.resources is not first.resources
    assert exact(third) == exact(normalize("c", rows, NOW))


@pytest.mark.parametrize(
    "polls",
    [
        # The last row of an id wins: what reuse knows of it is not what it gave.
        [[vm(100)], [vm(100, status="stopped"), vm(100)], [vm(100, status="stopped")]],
        [[vm(100)], [vm(100, status="stopped"), vm(100)], [vm(100), vm(100)]],
        [[vm(100), vm(101)], [vm(101), vm(100)], [vm(100), vm(101)]],
        [[vm(100), vm(101)], [vm(100), vm(100)], [vm(100), vm(101)]],
        [[vm(100)], [vm(100)], [vm(100), vm(101)], [vm(100)]],
    ],
)
def test_the_mapping_of_last_time_only_when_it_is_this_polls(
    polls: list[list[dict[str, Any]]],
) -> None:
    normalizer = Normalizer()
    for rows in polls:
        assert exact(normalizer("c", stable(rows), NOW)) == exact(normalize("c", rows, NOW))
