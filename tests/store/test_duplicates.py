"""The second sighting of a backup failure, in the transaction that records it (both
stores): recorded as a duplicate with no outbox row, its details merged into the first,
whichever channel came first, and when both commit at the same moment."""

from __future__ import annotations

import dataclasses
import threading

from pvewatch.model import Event, SourceHealth
from tests.store.conftest import AnyStore
from tests.test_duplicates import notice, task


def poll(store: AnyStore, *events: Event) -> None:
    store.commit_poll(
        "lab", snapshot=None, events=list(events), sinks=["hook"], health=SourceHealth()
    )


def stored(store: AnyStore) -> dict[str, Event]:
    return {e.id: e for e in store.events()}


def queued(store: AnyStore) -> list[str]:
    return [d.event.id for d in store.deliveries(sink="hook")]


def test_the_notification_after_the_poll(store: AnyStore) -> None:
    poll(store, task())
    (recorded,) = store.record_events([notice()], ["hook"])
    assert recorded.suppressed == "duplicate"
    assert recorded.details["duplicate_of"] == "evt_task"
    events = stored(store)
    assert events["evt_notice"].suppressed == "duplicate"
    assert events["evt_task"].details["failed_guests"] == [101]
    assert queued(store) == ["evt_task"], "one page"
    pending = store.deliveries(sink="hook")[0].event
    assert pending.details["job_id"] == "backup-1", "a pending page goes out complete"


def test_the_poll_after_the_notification(store: AnyStore) -> None:
    (first,) = store.record_events([notice()], ["hook"])
    assert first.suppressed is None
    poll(store, task())
    events = stored(store)
    assert events["evt_task"].suppressed == "duplicate"
    assert events["evt_notice"].details["upid"] == task().details["upid"]
    assert queued(store) == ["evt_notice"]


def test_each_channel_alone(store: AnyStore) -> None:
    poll(store, task(node="pve2"))
    store.record_events([notice(node="pve3")], ["hook"])
    assert sorted(queued(store)) == ["evt_notice", "evt_task"]


def test_another_cluster_is_not_a_duplicate(store: AnyStore) -> None:
    poll(store, task())
    other = dataclasses.replace(notice(), cluster="other")
    (recorded,) = store.record_events([other], ["hook"])
    assert recorded.suppressed is None


def test_both_channels_at_the_same_moment_make_one_page(store: AnyStore) -> None:
    pairs = 12
    start = threading.Barrier(2)

    def notices() -> None:
        start.wait()
        for i in range(pairs):
            store.record_events([notice(node=f"n{i}", id_=f"evt_n{i}")], ["hook"])

    def polls() -> None:
        start.wait()
        for i in range(pairs):
            poll(store, task(node=f"n{i}", id_=f"evt_t{i}"))

    threads = [threading.Thread(target=notices), threading.Thread(target=polls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = stored(store)
    for i in range(pairs):
        pair = [events[f"evt_n{i}"], events[f"evt_t{i}"]]
        assert sorted(str(e.suppressed) for e in pair) == ["None", "duplicate"], i
    assert len(queued(store)) == pairs
