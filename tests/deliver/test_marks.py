"""Group commit of "delivered" marks (pvewatch.deliver.marks.GroupMarks)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from pvewatch.deliver.marks import GroupMarks
from pvewatch.errors import StoreError

T0 = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)


class Marks:
    """mark_delivered_many of a store whose rows in `refused` may not be marked."""

    def __init__(self, refused: frozenset[int] = frozenset()) -> None:
        self.refused = refused
        self.batches: list[list[int]] = []
        self.written: dict[int, datetime] = {}

    def __call__(self, marks: Sequence[tuple[int, datetime]]) -> None:
        self.batches.append([outbox_id for outbox_id, _ in marks])
        if bad := [oid for oid, _ in marks if oid in self.refused]:
            raise StoreError(f"state store x: mark outbox row {bad[0]} delivered: it is dead")
        self.written.update(marks)


async def test_marks_made_together_are_written_in_one_batch_each_at_its_time() -> None:
    store = Marks()
    group = GroupMarks(store)
    times = [T0 + timedelta(seconds=n) for n in range(4)]
    await asyncio.gather(*(group.mark(n, times[n]) for n in range(4)))
    assert store.batches == [[0, 1, 2, 3]]
    assert store.written == dict(enumerate(times))


async def test_a_mark_made_while_a_batch_is_written_goes_in_the_next() -> None:
    store = Marks()
    group = GroupMarks(store)
    first = asyncio.create_task(group.mark(1, T0))
    await asyncio.sleep(0)  # the first batch is being written (in a thread)
    await asyncio.gather(first, group.mark(2, T0), group.mark(3, T0))
    assert store.batches == [[1], [2, 3]]


async def test_a_refused_batch_is_written_row_by_row_and_only_the_bad_row_fails() -> None:
    store = Marks(refused=frozenset({2}))
    group = GroupMarks(store)
    results = await asyncio.gather(*(group.mark(n, T0) for n in (1, 2, 3)), return_exceptions=True)
    assert results[0] is None
    assert results[2] is None
    assert isinstance(results[1], StoreError)
    assert sorted(store.written) == [1, 3]
    assert store.batches == [[1, 2, 3], [1], [2], [3]]


async def test_a_lone_refused_mark_raises_the_stores_error() -> None:
    group = GroupMarks(Marks(refused=frozenset({7})))
    with pytest.raises(StoreError, match="row 7"):
        await group.mark(7, T0)
