"""What the read API and the status page read from either store: events newest committed
first with filters and a cursor, each event's delivery state, the queues per sink, and
the resources counted by type and status."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta

import pytest

from pvewatch.model import Event, Severity, SourceHealth
from pvewatch.store.base import Delivery, EventQuery, Queue

from .builders import T0, event, resources, snapshot
from .conftest import AnyStore, Opener


@pytest.fixture
def store(open_store: Opener) -> Iterator[AnyStore]:
    with open_store(clock=lambda: T0) as s:
        yield s


def commit(store: AnyStore, *events: Event, sinks: tuple[str, ...] = ("hook",)) -> None:
    store.commit_poll(
        events[0].cluster, snapshot=None, events=events, sinks=sinks, health=SourceHealth()
    )


def ids(found: list[tuple[int, Event]]) -> list[str]:
    return [e.id for _, e in found]


@pytest.fixture
def stored(store: AnyStore) -> AnyStore:
    commit(store, event(1), event(2, type_="guest.started", resource_id="qemu/101"))
    critical = dataclasses.replace(event(3, type_="node.offline"), severity=Severity.CRITICAL)
    commit(store, critical)
    commit(store, event(4, cluster="lab"), event(5, cluster="lab", type_="guest.migrated"))
    return store


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (EventQuery(), [("lab", 5), ("lab", 4), ("prod", 3), ("prod", 2), ("prod", 1)]),
        (EventQuery(limit=2), [("lab", 5), ("lab", 4)]),
        (EventQuery(cluster="prod"), [("prod", 3), ("prod", 2), ("prod", 1)]),
        (EventQuery(type_pattern="guest.*"), [("lab", 5), ("lab", 4), ("prod", 2), ("prod", 1)]),
        (EventQuery(type_pattern="guest.st?????"), [("lab", 4), ("prod", 2), ("prod", 1)]),
        (EventQuery(severity="critical"), [("prod", 3)]),
        (EventQuery(resource="qemu/101"), [("prod", 2)]),
        (EventQuery(event_id="evt_lab_4"), [("lab", 4)]),
        (
            EventQuery(since=T0 + timedelta(seconds=2)),
            [("lab", 5), ("lab", 4), ("prod", 3), ("prod", 2)],
        ),
        (EventQuery(until=T0 + timedelta(seconds=2)), [("prod", 1)]),
        (EventQuery(cluster="prod", severity="warning", resource="qemu/100"), [("prod", 1)]),
        (EventQuery(cluster="nowhere"), []),
        (EventQuery(limit=0), []),
    ],
)
def test_browse_filters_newest_committed_first(
    stored: AnyStore, query: EventQuery, expected: list[tuple[str, int]]
) -> None:
    assert ids(stored.browse(query)) == [f"evt_{c}_{n}" for c, n in expected]


def test_paging_by_cursor_neither_repeats_nor_skips_while_events_are_committed(
    store: AnyStore,
) -> None:
    commit(store, *[event(n) for n in range(25)])
    seen: list[str] = []
    before = None
    newer = 100
    while page := store.browse(EventQuery(before=before, limit=7)):
        seen += ids(page)
        before = page[-1][0]
        commit(store, event(newer), event(newer + 1))  # newer events arrive meanwhile
        newer += 2
    assert seen == [f"evt_prod_{n}" for n in reversed(range(25))]


def test_delivery_states_of_events(store: AnyStore) -> None:
    commit(store, event(1), event(2), sinks=("hook", "log"))
    [row] = [i for i in store.deliveries(sink="hook") if i.event.id == "evt_prod_1"]
    store.mark_dead(row.outbox_id, attempts=3, error="HTTP 500", now=T0)
    found = store.delivery_states(["evt_prod_1", "evt_prod_9"])
    assert sorted(found, key=lambda d: d.sink) == [
        Delivery("evt_prod_1", "hook", "dead", 3, "HTTP 500"),
        Delivery("evt_prod_1", "log", "pending", 0, None),
    ]
    assert store.delivery_states([]) == []


def test_queues_count_pending_and_dead_with_the_newest_error(store: AnyStore) -> None:
    commit(store, *[event(n) for n in range(4)], sinks=("hook", "log"))
    hook = store.deliveries(sink="hook")
    store.mark_dead(hook[0].outbox_id, attempts=5, error="old: refused", now=T0)
    store.mark_retry(hook[2].outbox_id, attempts=1, next_attempt_at=T0, error="new: timeout")
    store.mark_delivered(hook[3].outbox_id, T0)
    assert store.queues() == [
        Queue("hook", pending=2, dead=1, last_error="new: timeout"),
        Queue("log", pending=4, dead=0, last_error=None),
    ]


def test_resource_counts_by_cluster_type_and_status(store: AnyStore) -> None:
    res = resources(3) | {
        k: dataclasses.replace(v, status="stopped")
        for k, v in resources(5).items()
        if k >= "qemu/3"
    }
    store.commit_poll("prod", snapshot=snapshot(res), events=[], sinks=(), health=SourceHealth())
    store.commit_poll(
        "lab",
        snapshot=snapshot(resources(1), cluster="lab"),
        events=[],
        sinks=(),
        health=SourceHealth(),
    )
    assert store.resource_counts() == [
        ("lab", "qemu", "running", 1),
        ("prod", "qemu", "running", 3),
        ("prod", "qemu", "stopped", 2),
    ]


def test_a_replica_answers_for_every_cluster_of_the_shared_store(store: AnyStore) -> None:
    """The read API's status on either store: a replica whose config names only `prod`
    still shows `lab`, which another replica polls into the same store."""
    from pvewatch.http.view import ReadView, Source

    for cluster in ("prod", "lab"):
        snap = snapshot(resources(2), cluster=cluster)
        store.commit_poll(cluster, snapshot=snap, events=[event(1, cluster=cluster)],
                          sinks=("hook",), health=SourceHealth())  # fmt: skip
    view = ReadView(Source(store, clusters=["prod"], sinks=["hook"]))
    clusters = view.status()["clusters"]
    assert [(c["name"], c["watched"], c["health"]) for c in clusters] == [
        ("lab", False, "ok"),
        ("prod", True, "ok"),
    ]
    assert [e["cluster"] for e in view.events(EventQuery())["events"]] == ["lab", "prod"]
