"""The stores' outbox (due, mark_*), the event history and pruning."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from pvewatch.errors import StoreError
from pvewatch.model import Event, SourceHealth
from pvewatch.store.base import OutboxItem

from .builders import T0, event
from .conftest import AnyStore

SINKS = ("webhook", "log")
LATER = T0 + timedelta(hours=1)


def commit(store: AnyStore, *events: Event, sinks: tuple[str, ...] = SINKS) -> None:
    cluster = events[0].cluster if events else "prod"
    store.commit_poll(cluster, snapshot=None, events=events, sinks=sinks, health=SourceHealth())


def ids(items: list[OutboxItem]) -> list[str]:
    return [i.event.id for i in items]


def test_a_new_row_is_pending_and_due_at_once(store: AnyStore) -> None:
    commit(store, event(1))
    [item] = store.due("log", T0)
    assert item == OutboxItem(item.outbox_id, "log", event(1), 0, item.next_attempt_at,
                              "pending", None, "prod", "qemu/100", item.queued_at)  # fmt: skip
    assert item.next_attempt_at <= event(1).time


def test_routing_by_function_gives_each_event_its_own_sinks(store: AnyStore) -> None:
    def route(e: Event) -> tuple[str, ...]:
        return {"evt_prod_1": ("log",), "evt_prod_2": ("webhook", "log")}.get(e.id, ())

    store.commit_poll(
        "prod",
        snapshot=None,
        events=[event(1), event(2), event(3)],
        sinks=route,
        health=SourceHealth(),
    )
    assert ids(store.due("log", T0)) == ["evt_prod_1", "evt_prod_2"]
    assert ids(store.due("webhook", T0)) == ["evt_prod_2"]
    # An event routed nowhere is still recorded.
    assert [e.id for e in store.events()] == ["evt_prod_1", "evt_prod_2", "evt_prod_3"]


def test_due_keeps_commit_order_even_when_the_head_waits(store: AnyStore) -> None:
    commit(store, event(1), event(2))
    commit(store, event(3))
    head = store.due("log", T0)[0]
    store.mark_retry(head.outbox_id, attempts=1, next_attempt_at=LATER, error="HTTP 503")
    items = store.due("log", T0)
    assert ids(items) == ["evt_prod_1", "evt_prod_2", "evt_prod_3"]
    assert (items[0].attempts, items[0].next_attempt_at, items[0].last_error) == (
        1, LATER, "HTTP 503",
    )  # fmt: skip
    assert ids(store.due("log", T0, limit=2)) == ["evt_prod_1", "evt_prod_2"]
    assert store.due("log", T0, limit=0) == []
    assert store.due("nowhere", T0) == []


def test_delivered_and_dead_rows_leave_the_queue_of_their_sink_only(store: AnyStore) -> None:
    commit(store, event(1), event(2), event(3))
    first, second, _ = store.due("log", T0)
    store.mark_delivered(first.outbox_id, LATER)
    store.mark_dead(second.outbox_id, attempts=5, error="HTTP 400", now=LATER)
    assert ids(store.due("log", T0)) == ["evt_prod_3"]
    assert store.pending_count("log") == 1
    assert store.pending_count("webhook") == 3


@pytest.mark.parametrize(
    ("first", "then", "allowed"),
    [
        ("delivered", "delivered", True),  # a repeated mark is a no-op
        ("dead", "dead", True),
        ("delivered", "retry", False),
        ("delivered", "dead", False),
        ("dead", "delivered", False),
        ("dead", "retry", False),
    ],
)
def test_only_a_pending_row_changes_state(
    store: AnyStore, first: str, then: str, allowed: bool
) -> None:
    commit(store, event(1))
    oid = store.due("log", T0)[0].outbox_id
    marks = {
        "delivered": lambda: store.mark_delivered(oid, LATER),
        "dead": lambda: store.mark_dead(oid, attempts=3, error="gone", now=LATER),
        "retry": lambda: store.mark_retry(oid, attempts=1, next_attempt_at=LATER, error="x"),
    }
    marks[first]()
    if allowed:
        marks[then]()
    else:
        with pytest.raises(StoreError, match=f"outbox row {oid} .* it is {first}"):
            marks[then]()
    assert store.pending_count("log") == 0


def test_marking_an_unknown_row_is_an_error(store: AnyStore) -> None:
    with pytest.raises(StoreError, match=r"outbox row 42 .*no such row"):
        store.mark_delivered(42, LATER)


def test_a_long_error_is_truncated(store: AnyStore) -> None:
    commit(store, event(1))
    oid = store.due("log", T0)[0].outbox_id
    store.mark_retry(oid, attempts=1, next_attempt_at=LATER, error="x" * 100_000)
    assert len(store.due("log", T0)[0].last_error or "") == 2000


HISTORY = [
    event(1, type_="guest.stopped"),
    event(2, type_="node.offline", cluster="lab", resource_id="node/pve1"),
    event(3, type_="guest.started"),
    event(4, type_="storage.unavailable", resource_id="storage/pve1/local"),
    event(5, type_="guest.migrated", cluster="lab"),
]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, [1, 2, 3, 4, 5]),
        ({"since": event(3).time}, [3, 4, 5]),
        ({"type_pattern": "guest.*"}, [1, 3, 5]),
        ({"type_pattern": "*.offline"}, [2]),
        ({"type_pattern": "Guest.*"}, []),
        ({"cluster": "lab"}, [2, 5]),
        ({"cluster": "lab", "type_pattern": "guest.*"}, [5]),
        ({"limit": 2}, [4, 5]),
        ({"limit": 0}, []),
        ({"since": event(9).time}, []),
    ],
)
def test_events_filters(store: AnyStore, query: dict[str, object], expected: list[int]) -> None:
    for e in reversed(HISTORY):  # committed out of order; read back by time
        commit(store, e)
    got = store.events(**query)  # type: ignore[arg-type]
    assert [int(e.summary.split()[1]) for e in got] == expected


def test_same_time_events_come_back_in_commit_order(store: AnyStore) -> None:
    same = [event(n, time=T0) for n in (3, 1, 2)]
    commit(store, *same)
    assert store.events() == same


OLD = T0 - timedelta(days=40)
NOW = T0


@pytest.mark.parametrize(
    ("when", "outcomes", "event_kept"),
    [
        (OLD, ("delivered", "delivered"), False),
        (OLD, ("delivered", "dead"), False),
        (OLD, ("delivered", "pending"), True),  # a sink still needs it
        (OLD, (), False),  # no sink ever wanted it
        (NOW - timedelta(days=1), ("delivered", "dead"), True),  # within retention
    ],
)
def test_prune(
    store: AnyStore, when: datetime, outcomes: tuple[str, ...], event_kept: bool
) -> None:
    old = event(1, time=when)
    sinks = tuple(f"s{i}" for i in range(len(outcomes)))
    commit(store, old, sinks=sinks)
    for sink, outcome in zip(sinks, outcomes, strict=True):
        oid = store.due(sink, NOW)[0].outbox_id
        if outcome == "delivered":
            store.mark_delivered(oid, when)
        elif outcome == "dead":
            store.mark_dead(oid, attempts=5, error="no", now=when)
    deleted = store.prune(NOW, retention_days=30)
    assert store.events() == ([old] if event_kept else [])
    pending = [s for s, o in zip(sinks, outcomes, strict=True) if o == "pending"]
    assert [ids(store.due(s, NOW)) for s in pending] == [["evt_prod_1"]] * len(pending)
    if not event_kept:
        assert deleted == 1 + len(outcomes)
    # Pruning again finds nothing more.
    assert store.prune(NOW, retention_days=30) == 0


def test_prune_drops_old_finished_rows_of_a_kept_event(store: AnyStore) -> None:
    commit(store, event(1, time=OLD), sinks=("a", "b"))
    store.mark_delivered(store.due("a", NOW)[0].outbox_id, OLD)
    assert store.prune(NOW, retention_days=30) == 1  # a's row; the event waits for b
    assert store.events() == [event(1, time=OLD)]
    assert store.pending_count("b") == 1
    store.mark_delivered(store.due("b", NOW)[0].outbox_id, NOW)
    # The event has expired and nothing is pending: it goes with its recent row.
    assert store.prune(NOW, retention_days=30) == 2
    assert store.events() == []


def test_a_replayed_event_keeps_its_state_per_sink(store: AnyStore) -> None:
    commit(store, event(1))
    store.mark_delivered(store.due("log", T0)[0].outbox_id, LATER)
    commit(store, replace(event(1), summary="changed"))
    assert store.due("log", T0) == []
    assert store.events() == [event(1)]


def test_counts_per_state_and_sink(store: AnyStore) -> None:
    commit(store, event(1), event(2), event(3))
    first, second = store.due("log", T0)[:2]
    store.mark_delivered(first.outbox_id, LATER)
    store.mark_dead(second.outbox_id, attempts=5, error="HTTP 404", now=LATER)
    assert (store.pending_count("log"), store.dead_count("log")) == (1, 1)
    assert (store.pending_count("webhook"), store.dead_count("webhook")) == (3, 0)


def test_nul_characters_a_server_sent_do_not_stop_the_store(store: AnyStore) -> None:
    """PostgreSQL text holds no NUL; what a PVE server or a receiver sends may."""
    odd = replace(event(1, resource_id="qemu/1\x00"), summary="a\x00b")
    commit(store, odd)
    [item] = store.due("log", T0)
    assert item.event == odd
    store.mark_retry(item.outbox_id, attempts=1, next_attempt_at=LATER, error="HTTP 500: \x00")
    [again] = store.due("log", T0)
    assert again.last_error in ("HTTP 500: \x00", "HTTP 500: \ufffd")
