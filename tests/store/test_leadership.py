"""The leadership decisions (pure): the share, what to release and what to take, and
that replicas looking in any order end with every cluster led once, spread."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pvewatch.store.leadership import ORPHAN_LOOKS, Plan, delivered_clusters, lock_key, plan, share


def test_lock_keys_are_stable_signed_64_bit_and_distinct() -> None:
    assert lock_key("prod") == lock_key("prod")
    assert lock_key("prod") != lock_key("prod", "commit")
    keys = {lock_key(f"c{i}") for i in range(1000)}
    assert len(keys) == 1000
    assert all(-(2**63) <= k < 2**63 for k in keys)


@pytest.mark.parametrize(
    ("clusters", "live", "expected"), [(3, 1, 3), (3, 2, 2), (3, 3, 1), (3, 5, 1), (4, 0, 4)]
)
def test_share(clusters: int, live: int, expected: int) -> None:
    assert share(clusters, live) == expected


NAMES = ("a", "b", "c", "d")


@pytest.mark.parametrize(
    ("mine", "others", "live", "free_looks", "busy", "expected"),
    [
        # Alone: take everything free.
        ((), (), 1, {}, (), Plan((), ("a", "b", "c", "d"))),
        # A second replica joined: keep two, give back the last ones by name.
        (("a", "b", "c", "d"), (), 2, {}, (), Plan(("d", "c"), ())),
        # ... but not one with a poll in flight: next time.
        (("a", "b", "c", "d"), (), 2, {}, ("d",), Plan(("c",), ())),
        # The newcomer takes its share of what is free.
        ((), ("a", "b"), 2, {"c": 1, "d": 1}, (), Plan((), ("c", "d"))),
        # At its share, a free cluster waits one look for whoever has room...
        (("a", "b"), (), 2, {"c": 1, "d": 1}, (), Plan((), ())),
        # ... then anyone takes it (its replica died, the heartbeats do not know yet).
        (("a", "b"), (), 2, {"c": ORPHAN_LOOKS, "d": 1}, (), Plan((), ("c",))),
        # Nothing is taken while its poll is in flight here.
        ((), (), 1, {}, ("b",), Plan((), ("a", "c", "d"))),
    ],
)
def test_plan(
    mine: tuple[str, ...],
    others: tuple[str, ...],
    live: int,
    free_looks: dict[str, int],
    busy: tuple[str, ...],
    expected: Plan,
) -> None:
    got = plan(
        NAMES, mine=mine, others=others, live_replicas=live, free_looks=free_looks, busy=busy
    )
    assert got == expected


def test_events_of_no_cluster_go_with_the_first_cluster() -> None:
    assert delivered_clusters({"a"}, ["b", "a"]) == {"a", ""}
    assert delivered_clusters({"b"}, ["b", "a"]) == {"b"}
    assert delivered_clusters(set(), []) == frozenset()


@settings(max_examples=200, deadline=None)
@given(
    clusters=st.integers(1, 7),
    replicas=st.integers(1, 4),
    order=st.lists(st.integers(0, 3), min_size=60, max_size=60),
)
def test_replicas_looking_in_any_order_spread_every_cluster(
    clusters: int, replicas: int, order: list[int]
) -> None:
    """Locks are exclusive; each look releases then takes; after enough looks by every
    replica, each cluster has one leader and none leads more than its share."""
    names = [f"c{i}" for i in range(clusters)]
    holder: dict[str, int] = {}
    free_looks: list[dict[str, int]] = [{} for _ in range(replicas)]

    def look(r: int) -> None:
        mine = {c for c, h in holder.items() if h == r}
        others = {c for c, h in holder.items() if h != r}
        free = [c for c in names if c not in holder]
        free_looks[r] = {c: free_looks[r].get(c, 0) + 1 for c in free}
        decided = plan(
            names, mine=mine, others=others, live_replicas=replicas, free_looks=free_looks[r]
        )
        for c in decided.release:
            del holder[c]
        for c in decided.take:
            holder.setdefault(c, r)  # pg_try_advisory_lock: the first one wins

    for r in order:
        look(r % replicas)
    for _ in range(3):  # then everyone looks a few times
        for r in range(replicas):
            look(r)
    assert sorted(holder) == names
    counts = [list(holder.values()).count(r) for r in range(replicas)]
    assert max(counts) <= share(clusters, replicas)
