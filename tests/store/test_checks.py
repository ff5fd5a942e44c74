"""The health checks' part of the store, on both stores: a run's memory, status and events
go in together; `check_states` is what the status page shows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pvewatch.store.base import CheckState

from .builders import event
from .conftest import AnyStore, Opener

T0 = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)


def test_a_run_is_stored_with_its_events_and_read_back_after_reopening(
    open_store: Opener,
) -> None:
    memory = {"baseline": True, "open": {"disk.failed:disk/pve1/sda": {"id": "evt_prod_1"}}}
    found = event(1, type_="disk.failed", resource_id="disk/pve1/sda")
    with open_store() as store:
        assert store.load_check("prod", "disks") == {}
        assert store.check_states("prod") == []
        store.commit_check(
            "prod",
            "disks",
            state=memory,
            status=CheckState("disks", "up", T0, 1),
            events=[found],
            sinks=["log"],
        )
    with open_store() as store:
        assert store.load_check("prod", "disks") == memory
        assert store.check_states("prod") == [CheckState("disks", "up", T0, 1)]
        assert [e.id for e in store.events()] == [found.id]
        assert [d.event.id for d in store.deliveries(sink="log")] == [found.id]


def test_each_check_has_its_own_state_and_status(store: AnyStore) -> None:
    later = T0 + timedelta(minutes=5)
    for name, status, at, detail in (
        ("ceph", "idle", T0, None),
        ("ha", "up", T0, None),
        ("ha", "disabled", later, "Sys.Audit on /"),
        ("qdevice", "failing", later, "GET /cluster/config/qdevice: 500 got timeout"),
    ):
        row = CheckState(name, status, at, 0, detail)
        store.commit_check("prod", name, state={"n": name}, status=row, events=[], sinks=[])
    store.commit_check(
        "lab", "ha", state={}, status=CheckState("ha", "up", T0, 2), events=[], sinks=[]
    )
    assert store.check_states("prod") == [
        CheckState("ceph", "idle", T0, 0),
        CheckState("ha", "disabled", later, 0, "Sys.Audit on /"),
        CheckState("qdevice", "failing", later, 0, "GET /cluster/config/qdevice: 500 got timeout"),
    ]
    assert store.check_states("lab") == [CheckState("ha", "up", T0, 2)]
    assert store.load_check("prod", "ha") == {"n": "ha"}


def test_an_event_already_recorded_is_not_recorded_twice(store: AnyStore) -> None:
    found = event(1, type_="zfs.degraded", resource_id="zfs/pve1/rpool")
    for _ in range(2):
        store.commit_check(
            "prod",
            "disks",
            state={},
            status=CheckState("disks", "up", T0, 1),
            events=[found],
            sinks=["log"],
        )
    assert len(store.deliveries(sink="log")) == 1
