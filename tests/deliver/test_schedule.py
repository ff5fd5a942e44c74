"""Which due rows form one message, and the rate limit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvewatch.deliver.schedule import MAX_GROUP, RateLimit, is_new, plan_messages
from tests.sinks.contract import T0

from .fakes import Item, events

S = timedelta(seconds=1)


def items(*specs: tuple[int, int]) -> list[Item]:
    """(attempts, seconds after T0 of the retry time) per row."""
    es = events(len(specs))
    return [Item(i + 1, "s", es[i], a, T0 + t * S) for i, (a, t) in enumerate(specs)]


def oids(messages: list[list[Item]]) -> list[list[int]]:
    return [[i.outbox_id for i in m] for m in messages]


def test_one_message_per_row_unless_the_sink_groups() -> None:
    rows = items((0, 0), (2, 5), (0, 1))
    assert oids(plan_messages(rows, grouped=False)) == [[1], [2], [3]]


def test_grouping_keeps_a_retried_burst_together_and_new_rows_apart() -> None:
    rows = items((0, 0), (2, 5), (0, 1), (2, 5), (2, 9), (1, 5))
    assert oids(plan_messages(rows, grouped=True)) == [[1, 3], [2, 4], [5], [6]]
    assert [is_new(m) for m in plan_messages(rows, grouped=True)] == [True, False, False, False]


def test_a_big_burst_is_split() -> None:
    rows = items(*[(0, 0)] * (MAX_GROUP * 2 + 1))
    assert [len(m) for m in plan_messages(rows, grouped=True)] == [MAX_GROUP, MAX_GROUP, 1]


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), max_size=80), st.booleans())
def test_every_row_goes_in_exactly_one_message(specs: list[tuple[int, int]], grouped: bool) -> None:
    rows = items(*specs)
    sent = [i.outbox_id for m in plan_messages(rows, grouped=grouped) for i in m]
    assert sorted(sent) == [r.outbox_id for r in rows]


@pytest.mark.parametrize(
    ("per_minute", "sends", "at", "wait"),
    [
        (None, 1000, 0, 0.0),
        (2, 1, 0, 0.0),
        (2, 2, 0, 60.0),
        (2, 2, 59, 1.0),
        (2, 2, 60, 0.0),
    ],
)
def test_rate_limit(per_minute: int | None, sends: int, at: int, wait: float) -> None:
    limit = RateLimit(per_minute)
    for _ in range(sends):
        limit.note(T0)
    assert limit.wait(T0 + at * S) == wait


@given(st.integers(1, 30), st.lists(st.integers(0, 5), min_size=1, max_size=200))
def test_never_more_than_per_minute_in_any_minute(per_minute: int, gaps: list[int]) -> None:
    limit, now, sent = RateLimit(per_minute), T0, []
    for gap in gaps:
        now += gap * S
        now += limit.wait(now) * S
        limit.note(now)
        sent.append(now)
    for t in sent:
        assert sum(1 for u in sent if t <= u < t + 60 * S) <= per_minute


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_per_minute"):
        RateLimit(0)
