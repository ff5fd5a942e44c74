"""The stores for delivery: line heads, events recorded outside a poll, listing and
re-queueing deliveries (`pvewatch deliveries` / `replay`)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from pvewatch.model import Event, SourceHealth
from pvewatch.store.base import OutboxItem

from .builders import T0, event
from .conftest import AnyStore, Opener

LATER = T0 + timedelta(hours=1)


@pytest.fixture
def store(open_store: Opener) -> Iterator[AnyStore]:
    with open_store(clock=lambda: T0) as s:
        yield s


def commit(store: AnyStore, *events: Event, sinks: tuple[str, ...] = ("hook", "log")) -> None:
    store.commit_poll(
        events[0].cluster, snapshot=None, events=events, sinks=sinks, health=SourceHealth()
    )


def ids(items: list[OutboxItem]) -> list[str]:
    return [i.event.id for i in items]


def source_event(n: int, cluster: str = "prod") -> Event:
    return dataclasses.replace(event(n, cluster=cluster, type_="source.unreachable"), resource=None)


def test_heads_are_the_first_pending_row_of_each_resource(store: AnyStore) -> None:
    commit(
        store,
        event(1, resource_id="qemu/100"),
        event(2, resource_id="qemu/101"),
        event(3, resource_id="qemu/100"),
        source_event(4),
        event(5, resource_id="qemu/102"),
        source_event(6),
    )
    commit(store, event(7, cluster="lab", resource_id="qemu/100"))
    heads = store.heads("hook")
    assert ids(heads) == ["evt_prod_1", "evt_prod_2", "evt_prod_4", "evt_prod_5", "evt_lab_7"]
    assert [h.line for h in heads] == [
        ("prod", "qemu/100"),
        ("prod", "qemu/101"),
        ("prod", None),
        ("prod", "qemu/102"),
        ("lab", "qemu/100"),
    ]
    assert heads[0].queued_at == T0
    assert ids(store.heads("hook", limit=2)) == ["evt_prod_1", "evt_prod_2"]
    page_2 = store.heads("hook", limit=2, after=heads[1].outbox_id)
    assert ids(page_2) == ["evt_prod_4", "evt_prod_5"]
    assert store.heads("hook", limit=0) == []


def test_a_retrying_head_holds_only_its_own_line(store: AnyStore) -> None:
    commit(store, event(1, resource_id="qemu/100"), event(2, resource_id="qemu/100"))
    commit(store, event(3, resource_id="qemu/101"))
    head = store.heads("hook")[0]
    store.mark_retry(head.outbox_id, attempts=1, next_attempt_at=LATER, error="HTTP 503")
    heads = store.heads("hook")
    assert ids(heads) == ["evt_prod_1", "evt_prod_3"]
    assert (heads[0].attempts, heads[0].next_attempt_at) == (1, LATER)
    store.mark_delivered(heads[1].outbox_id, T0)
    store.mark_delivered(heads[0].outbox_id, LATER)
    assert ids(store.heads("hook")) == ["evt_prod_2"]
    # A dead head leaves its line: the next row of the resource moves up.
    store.mark_dead(store.heads("hook")[0].outbox_id, attempts=1, error="400", now=LATER)
    assert store.heads("hook") == []
    assert ids(store.heads("log")) == ["evt_prod_1", "evt_prod_3"]


def test_heads_stay_quick_with_a_long_backlog(store: AnyStore) -> None:
    backlog = [event(i, resource_id=f"qemu/{100 + i % 50}") for i in range(20_000)]
    commit(store, *backlog, sinks=("hook",))
    started = time.perf_counter()
    for _ in range(20):
        heads = store.heads("hook", limit=200)
    per_call = (time.perf_counter() - started) / 20
    assert len(heads) == 50
    # About 20 ms here; the bound is for a loaded machine and still far below what a scan
    # per resource (quadratic) would take.
    assert per_call < 1.0, f"heads() took {per_call * 1000:.0f} ms with 20,000 pending rows"


def test_record_events_routes_them_and_records_each_once(store: AnyStore) -> None:
    e = source_event(1)
    store.record_events([e], lambda ev: ["log"])
    assert ids(store.heads("log")) == [e.id]
    assert store.heads("hook") == []
    store.record_events([e], lambda ev: ["log"])  # known: not recorded twice
    assert [x.id for x in store.events()] == [e.id]
    assert len(store.deliveries(sink="log")) == 1


def test_deliveries_lists_pending_and_dead_not_delivered(store: AnyStore) -> None:
    commit(store, event(1), event(2, resource_id="qemu/101"), event(3, resource_id="qemu/102"))
    first, second, _ = store.heads("hook")
    store.mark_delivered(first.outbox_id, T0)
    store.mark_dead(second.outbox_id, attempts=3, error="HTTP 400 from https://x", now=T0)
    assert ids(store.deliveries(sink="hook")) == ["evt_prod_2", "evt_prod_3"]
    dead = store.deliveries(sink="hook", state="dead")
    assert [(d.event.id, d.attempts, d.last_error) for d in dead] == [
        ("evt_prod_2", 3, "HTTP 400 from https://x")
    ]
    pending = store.deliveries(state="pending")  # every sink, in outbox order
    assert [(p.event.id, p.sink) for p in pending] == [
        ("evt_prod_1", "log"),
        ("evt_prod_2", "log"),
        ("evt_prod_3", "hook"),
        ("evt_prod_3", "log"),
    ]
    assert ids(store.deliveries(sink="hook", limit=1)) == ["evt_prod_2"]
    assert store.deliveries(sink="nowhere") == []


def test_requeue_all_dead_resets_them_and_keeps_their_place(store: AnyStore) -> None:
    commit(store, event(1), event(2), sinks=("hook",))
    head = store.heads("hook")[0]
    store.mark_dead(head.outbox_id, attempts=5, error="gave up", now=T0)
    assert ids(store.heads("hook")) == ["evt_prod_2"]
    assert store.requeue(sinks=["hook"], event_id=None, now=LATER) == 1
    [again] = store.heads("hook")  # first in its line again, before event 2
    assert (again.event.id, again.state, again.attempts) == ("evt_prod_1", "pending", 0)
    assert (again.next_attempt_at, again.queued_at, again.last_error) == (LATER, LATER, None)
    assert store.requeue(sinks=["hook"], event_id=None, now=LATER) == 0


def test_requeue_one_event_whatever_its_state_for_the_sinks_given(store: AnyStore) -> None:
    commit(store, event(1))
    for sink in ("hook", "log"):
        store.mark_delivered(store.heads(sink)[0].outbox_id, T0)
    assert store.requeue(sinks=["hook"], event_id="evt_prod_1", now=LATER) == 1
    assert ids(store.heads("hook")) == ["evt_prod_1"]
    assert store.heads("log") == []
    assert store.requeue(sinks=["hook", "log"], event_id="evt_prod_1", now=LATER) == 2
    assert store.requeue(sinks=["hook"], event_id="evt_nope", now=LATER) == 0
    assert store.requeue(sinks=[], event_id="evt_prod_1", now=LATER) == 0
