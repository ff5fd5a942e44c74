"""Normalizer: normalize poll after poll, reusing the resources of unchanged rows."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvewatch.watch.diff import diff
from pvewatch.watch.normalize import Normalizer, normalize

from .rows import NOW, node, vm
from .test_properties import garbage_rows, guest_row, other_row

realistic_rows = st.lists(st.one_of(guest_row(), other_row()), max_size=8)


@given(st.lists(realistic_rows | garbage_rows, min_size=1, max_size=5))
def test_poll_after_poll_it_gives_what_normalize_gives(polls: list[list[Any]]) -> None:
    normalizer = Normalizer()
    for rows in polls:
        assert normalizer("c", rows, NOW) == normalize("c", rows, NOW)


def test_a_row_whose_counters_moved_gives_the_same_resource_object() -> None:
    normalizer = Normalizer()
    first = normalizer("c", [vm(100, cpu=0.1, mem=1, uptime=5), node("pve1")], NOW)
    second = normalizer("c", [vm(100, cpu=0.9, mem=7, uptime=15), node("pve1")], NOW)
    assert second.resources["qemu/100"] is first.resources["qemu/100"]
    assert second.resources["node/pve1"] is first.resources["node/pve1"]
    assert diff(first, second, NOW) == []


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ({"status": "running"}, {"status": "stopped"}),
        ({"tags": "a;b"}, {"tags": "a;c"}),
        ({"status": "running"}, {"status": "running", "lock": "backup"}),  # a new key
        ({"lock": "backup"}, {"hastate": "started"}),  # as many keys, not the same ones
        ({"status": 1}, {"status": True}),  # equal in Python, normalized differently
        ({"template": 1}, {"template": 1.0}),
    ],
)
def test_a_row_that_changed_is_normalized_again(
    before: dict[str, Any], after: dict[str, Any]
) -> None:
    normalizer = Normalizer()
    first = normalizer("c", [vm(100) | before], NOW)
    rows = [vm(100) | after]
    second = normalizer("c", rows, NOW)
    assert second.resources["qemu/100"] is not first.resources["qemu/100"]
    assert second == normalize("c", rows, NOW)


def test_rows_that_went_away_are_forgotten() -> None:
    normalizer = Normalizer()
    normalizer("c", [vm(100), vm(101)], NOW)
    assert set(normalizer("c", [vm(101)], NOW).resources) == {"qemu/101"}
    again = normalizer("c", [vm(100), vm(101)], NOW)
    assert set(again.resources) == {"qemu/100", "qemu/101"}
