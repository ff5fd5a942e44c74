"""Marking many outbox rows delivered in one transaction (`mark_delivered_many`, used by
delivery's group commit): all or nothing, with each row's own time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pvewatch.errors import StoreError
from pvewatch.model import SourceHealth

from .builders import T0, event
from .conftest import AnyStore

LATER = T0 + timedelta(hours=1)


def commit(store: AnyStore, count: int) -> list[int]:
    events = [event(n) for n in range(1, count + 1)]
    store.commit_poll("prod", snapshot=None, events=events, sinks=("log",), health=SourceHealth())
    return [item.outbox_id for item in store.due("log", T0)]


def test_a_batch_marks_every_row_delivered_at_its_own_time(store: AnyStore) -> None:
    one, two, three = commit(store, 3)
    store.mark_delivered_many([(one, LATER), (two, LATER + timedelta(seconds=1))])
    assert [i.outbox_id for i in store.due("log", LATER)] == [three]
    delivered = store.deliveries(sink="log", state="delivered")
    assert sorted(i.outbox_id for i in delivered) == [one, two]
    store.mark_delivered_many([(one, LATER)])  # marked again: a no-op, as mark_delivered
    assert store.pending_count("log") == 1


def test_a_row_that_may_not_be_marked_fails_the_whole_batch(store: AnyStore) -> None:
    one, two, three = commit(store, 3)
    store.mark_dead(two, attempts=3, error="gone", now=LATER)
    with pytest.raises(StoreError, match=f"outbox row {two} .* it is dead"):
        store.mark_delivered_many([(one, LATER), (two, LATER), (three, LATER)])
    assert sorted(i.outbox_id for i in store.due("log", LATER)) == [one, three]
