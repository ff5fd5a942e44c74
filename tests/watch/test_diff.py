from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from pvewatch.model import EVENT_TYPES, Change, Snapshot
from pvewatch.watch.checks.findings import CHECK_EVENT_TYPES
from pvewatch.watch.diff import diff
from pvewatch.watch.notifications import NOTIFICATION_EVENT_TYPES
from pvewatch.watch.rules import RULE_EVENT_TYPES

from .rows import (
    CLUSTER,
    NOW,
    Row,
    ct,
    events_between,
    network,
    node,
    pool,
    sdn,
    skeletal,
    snap,
    storage,
    vm,
)

WARN, INFO, CRIT = "warning", "info", "critical"
Expected = list[tuple[str, str, str]]  # (type, severity, summary)


def case(old: list[Row], new: list[Row], expected: Expected, id: str) -> Any:
    return pytest.param(old, new, expected, id=id)


GUEST_STATUS = [
    case(
        [vm()],
        [vm(status="stopped")],
        [("guest.stopped", WARN, "VM 100 (web1) on pve1 stopped")],
        "stopped",
    ),
    case(
        [ct(status="stopped")],
        [ct()],
        [("guest.started", INFO, "CT 200 (dns01) on pve1 started")],
        "ct started",
    ),
    case(
        [vm(status="prelaunch")],
        [vm()],
        [("guest.resumed", INFO, "VM 100 (web1) on pve1 resumed from prelaunch")],
        "prelaunch→running",
    ),
    case(
        [vm(status="io-error")],
        [vm()],
        [("guest.resumed", INFO, "VM 100 (web1) on pve1 resumed from io-error")],
        "io-error→running",
    ),
    case(
        [vm(status="paused")],
        [vm()],
        [("guest.resumed", INFO, "VM 100 (web1) on pve1 resumed")],
        "resumed",
    ),
    case(
        [vm(status="suspended")],
        [vm()],
        [("guest.resumed", INFO, "VM 100 (web1) on pve1 resumed")],
        "woke",
    ),
    case(
        [vm()],
        [vm(status="paused")],
        [("guest.paused", WARN, "VM 100 (web1) on pve1 paused")],
        "paused",
    ),
    case(
        [vm()],
        [vm(status="io-error")],
        [
            (
                "guest.status_changed",
                CRIT,
                "VM 100 (web1) on pve1 status changed from running to io-error",
            )
        ],
        "io-error",
    ),
    case(
        [vm()],
        [vm(status="internal-error")],
        [
            (
                "guest.status_changed",
                CRIT,
                "VM 100 (web1) on pve1 status changed from running to internal-error",
            )
        ],
        "internal-error",
    ),
    case(
        [vm()],
        [vm(status="guest-panicked")],
        [
            (
                "guest.status_changed",
                CRIT,
                "VM 100 (web1) on pve1 status changed from running to guest-panicked",
            )
        ],
        "panicked",
    ),
    case(
        [vm()],
        [vm(status="suspended")],
        [
            (
                "guest.status_changed",
                WARN,
                "VM 100 (web1) on pve1 status changed from running to suspended",
            )
        ],
        "suspended",
    ),
    case(
        [skeletal(vm())],
        [vm()],
        [("guest.started", INFO, "VM 100 (web1) on pve1 started")],
        "unknown→running",
    ),
    case([skeletal(vm())], [vm(status="stopped")], [], "unknown→stopped is the default"),
    case(
        [skeletal(vm())],
        [vm(status="paused")],
        [
            (
                "guest.status_changed",
                WARN,
                "VM 100 (web1) on pve1 status changed from unknown to paused",
            )
        ],
        "unknown→paused",
    ),
    case([vm()], [skeletal(vm())], [], "running→unknown is no information"),
    case(
        [vm(name=None)],
        [vm(name=None, status="stopped")],
        [("guest.stopped", WARN, "VM 100 on pve1 stopped")],
        "no name",
    ),
    case(
        [vm(9000, name="debian-13-tmpl", template=1, status="stopped")],
        [vm(9000, name="debian-13-tmpl", template=1)],
        [("guest.started", INFO, "template 9000 (debian-13-tmpl) on pve1 started")],
        "template",
    ),
]

GUEST_FIELDS = [
    case(
        [vm()],
        [vm(node="pve2")],
        [("guest.migrated", INFO, "VM 100 (web1) migrated from pve1 to pve2")],
        "migrated",
    ),
    case(
        [vm(name="old")],
        [vm(name="new")],
        [("guest.renamed", INFO, "VM 100 (new) renamed from old to new")],
        "renamed",
    ),
    case(
        [vm(tags="prod;web")],
        [vm(tags="db;prod")],
        [("guest.tags_changed", INFO, "VM 100 (web1) tags changed: added db; removed web")],
        "tags",
    ),
    case([vm(tags="web;prod")], [vm(tags="prod,web")], [], "tag order and separator are no change"),
    case(
        [vm()],
        [vm(lock="backup")],
        [("guest.lock_changed", INFO, "VM 100 (web1) lock set: backup")],
        "lock set",
    ),
    case(
        [vm(lock="backup")],
        [vm()],
        [("guest.lock_changed", INFO, "VM 100 (web1) lock cleared (was backup)")],
        "lock cleared",
    ),
    case(
        [vm(lock="backup")],
        [vm(lock="migrate")],
        [("guest.lock_changed", INFO, "VM 100 (web1) lock changed from backup to migrate")],
        "lock changed",
    ),
    case(
        [vm(hastate="started")],
        [vm(hastate="fence")],
        [("guest.ha_state_changed", INFO, "VM 100 (web1) HA state changed from started to fence")],
        "hastate",
    ),
    case(
        [vm(status="stopped")],
        [vm(status="stopped", template=1)],
        [("guest.template_changed", INFO, "VM 100 (web1) became a template")],
        "template",
    ),
    case(
        [vm()],
        [vm(pool="prod")],
        [("guest.pool_changed", INFO, "VM 100 (web1) joined pool prod")],
        "pool joined",
    ),
    case(
        [vm(pool="prod")],
        [vm()],
        [("guest.pool_changed", INFO, "VM 100 (web1) left pool prod")],
        "pool left",
    ),
    case(
        [vm(pool="a")],
        [vm(pool="b")],
        [("guest.pool_changed", INFO, "VM 100 (web1) moved from pool a to pool b")],
        "pool moved",
    ),
    case([vm(cpu=0.1, uptime=5)], [vm(cpu=0.9, uptime=15, netin=0)], [], "counters are no change"),
]

EXISTENCE = [
    case([], [vm()], [("guest.added", INFO, "VM 100 (web1) on pve1 added")], "guest added"),
    case([ct()], [], [("guest.removed", WARN, "CT 200 (dns01) on pve1 removed")], "guest removed"),
    case([], [node("pve4")], [("node.added", INFO, "node pve4 added")], "node added"),
    case([node("pve4")], [], [("node.removed", WARN, "node pve4 removed")], "node removed"),
    case(
        [],
        [storage()],
        [("storage.added", INFO, "storage local-lvm on pve1 added")],
        "storage added",
    ),
    case(
        [storage()],
        [],
        [("storage.removed", WARN, "storage local-lvm on pve1 removed")],
        "storage removed",
    ),
    case([], [pool()], [("pool.added", INFO, "pool production added")], "pool added"),
    case([pool()], [], [("pool.removed", INFO, "pool production removed")], "pool removed"),
    case([], [sdn()], [("sdn.added", INFO, "SDN zone lab on pve1 added")], "sdn added"),
    case([sdn()], [], [("sdn.removed", INFO, "SDN zone lab on pve1 removed")], "sdn removed"),
    case(
        [],
        [network()],
        [("network.added", INFO, "network zone lab on pve1 added")],
        "network added",
    ),
    case(
        [network("underlay", kind="fabric")],
        [],
        [("network.removed", INFO, "network fabric underlay on pve1 removed")],
        "network removed",
    ),
    case(
        [],
        [{"id": "ceph/osd.1", "status": "up"}],
        [("resource.added", INFO, "ceph ceph/osd.1 added")],
        "unknown added",
    ),
    case(
        [{"id": "ceph/osd.1"}],
        [],
        [("resource.removed", INFO, "ceph ceph/osd.1 removed")],
        "unknown removed",
    ),
]

OTHER_STATUS = [
    case(
        [node("pve3")],
        [node("pve3", status="offline")],
        [("node.offline", CRIT, "node pve3 went offline")],
        "offline",
    ),
    case(
        [node("pve3", status="offline")],
        [node("pve3")],
        [("node.online", INFO, "node pve3 came online")],
        "online",
    ),
    case(
        [node("pve3")],
        [node("pve3", status="unknown")],
        [("node.status_changed", WARN, "node pve3 status changed from online to unknown")],
        "node unknown",
    ),
    case(
        [storage(on="pve2")],
        [storage(on="pve2", status="unknown")],
        [("storage.unavailable", WARN, "storage local-lvm on pve2 became unavailable")],
        "unavailable",
    ),
    case(
        [storage(status="unknown")],
        [storage()],
        [("storage.available", INFO, "storage local-lvm on pve1 became available")],
        "available",
    ),
    case(
        [sdn()],
        [sdn(status="error")],
        [
            (
                "sdn.status_changed",
                WARN,
                "SDN zone lab on pve1 status changed from available to error",
            )
        ],
        "sdn error",
    ),
    case(
        [sdn(status="pending")],
        [sdn()],
        [
            (
                "sdn.status_changed",
                INFO,
                "SDN zone lab on pve1 status changed from pending to available",
            )
        ],
        "sdn fixed",
    ),
    case(
        [network("underlay", on="pve3", kind="fabric", status="ok")],
        [network("underlay", on="pve3", kind="fabric", status="not ok")],
        [
            (
                "network.status_changed",
                WARN,
                "network fabric underlay on pve3 status changed from ok to not ok",
            )
        ],
        "fabric not ok",
    ),
    case(
        [network(status="pending")],
        [network(status="ok")],
        [
            (
                "network.status_changed",
                INFO,
                "network zone lab on pve1 status changed from pending to ok",
            )
        ],
        "zone ok",
    ),
    case(
        [{"id": "ceph/osd.1", "status": "up"}],
        [{"id": "ceph/osd.1", "status": "down"}],
        [("resource.status_changed", INFO, "ceph ceph/osd.1 status changed from up to down")],
        "unknown type",
    ),
    case([node(hastate="online", level="")], [node(hastate="fence", level="c")], [], "node labels"),
]


@pytest.mark.parametrize(
    ("old", "new", "expected"), GUEST_STATUS + GUEST_FIELDS + EXISTENCE + OTHER_STATUS
)
def test_event_type_severity_and_summary(
    old: list[Row], new: list[Row], expected: Expected
) -> None:
    events = events_between(old, new)
    assert [(e.type, e.severity.value, e.summary) for e in events] == expected
    for e in events:
        assert e.type in EVENT_TYPES
        assert (e.cluster, e.time, e.cause, e.detected_late) == (CLUSTER, NOW, None, False)


# QEMU's RunState enum, in its order (qemu qapi/run-state.json; FACTS.md §2.5), and what
# else PVE shows as a VM's status: stopped (no QEMU process), unknown (no metrics).
QEMU_RUN_STATES = [
    "debug", "inmigrate", "internal-error", "io-error", "paused", "postmigrate",
    "prelaunch", "finish-migrate", "restore-vm", "running", "save-vm", "shutdown",
    "suspended", "watchdog", "guest-panicked", "colo",
]  # fmt: skip
VM_STATUSES = [*QEMU_RUN_STATES, "stopped", "unknown"]
CRASHED = {"io-error", "internal-error", "guest-panicked"}


def expected_transition(old: str, new: str) -> tuple[str, str] | None:
    """What a VM's status change is, stated per target state: (type, severity)."""
    if new == "unknown" or (old == "unknown" and new == "stopped"):
        return None  # no information; a new guest's first status being the default
    if new == "running":
        # Only from stopped (or not yet known) is there a new QEMU process; from every
        # other run state the same process continues.
        return ("guest.started", INFO) if old in ("stopped", "unknown") else ("guest.resumed", INFO)
    if new == "stopped":
        return "guest.stopped", WARN
    if new == "paused" and old != "unknown":
        return "guest.paused", WARN
    return "guest.status_changed", CRIT if new in CRASHED else WARN


@pytest.mark.parametrize(
    ("old", "new"), [(a, b) for a in VM_STATUSES for b in VM_STATUSES if a != b]
)
def test_every_pair_of_vm_statuses(old: str, new: str) -> None:
    before = skeletal(vm()) if old == "unknown" else vm(status=old)
    after = skeletal(vm()) if new == "unknown" else vm(status=new)
    events = events_between([before], [after])
    expected = expected_transition(old, new)
    assert [(e.type, e.severity.value) for e in events] == ([expected] if expected else [])
    for e in events:
        assert e.change == Change("status", old, new)


def test_a_run_state_newer_than_this_list_is_resumed_from_too() -> None:
    """FACTS §8: status enums are open; PVE shows a VM without a QEMU process as stopped."""
    events = events_between([vm(status="some-new-state")], [vm()])
    assert [(e.type, e.summary) for e in events] == [
        ("guest.resumed", "VM 100 (web1) on pve1 resumed from some-new-state")
    ]


@pytest.mark.parametrize(
    ("guest", "summary"),
    [
        (vm(name="VM 100"), "VM 100 on pve1 stopped"),  # PVE's default name: said once
        (ct(name="CT200"), "CT 200 on pve1 stopped"),
        (vm(name="VM 100", template=1), "template 100 on pve1 stopped"),
        (vm(name="VM 101"), "VM 100 (VM 101) on pve1 stopped"),  # another guest's: kept
        (vm(name="CT100"), "VM 100 (CT100) on pve1 stopped"),  # a VM may be called that
        (ct(name="VM 200"), "CT 200 (VM 200) on pve1 stopped"),
        (vm(name="vm 100"), "VM 100 (vm 100) on pve1 stopped"),
    ],
)
def test_a_default_name_is_not_said_twice(guest: Row, summary: str) -> None:
    [event] = events_between([guest], [{**guest, "status": "stopped"}])
    assert event.summary == summary


def test_every_resource_event_type_is_covered_by_the_tables() -> None:
    tables = GUEST_STATUS + GUEST_FIELDS + EXISTENCE + OTHER_STATUS
    covered = {t for param in tables for t, _, _ in param.values[2]}
    # source.* from the poll's health, sink.* from delivery, the health checks' and the
    # notifications' own, the rest from the rules.
    made_elsewhere = {t for t in EVENT_TYPES if t.startswith(("source.", "sink."))}
    made_elsewhere |= RULE_EVENT_TYPES | CHECK_EVENT_TYPES | NOTIFICATION_EVENT_TYPES
    assert covered == set(EVENT_TYPES) - made_elsewhere


@pytest.mark.parametrize(
    ("old", "new", "change"),
    [
        (vm(), vm(status="stopped"), Change("status", "running", "stopped")),
        (vm(), vm(node="pve2"), Change("node", "pve1", "pve2")),
        (vm(tags="a;b"), vm(tags="c"), Change("tags", ["a", "b"], ["c"])),
        (vm(), vm(lock="backup"), Change("lock", None, "backup")),
        (vm(lock="backup"), vm(), Change("lock", "backup", None)),
        (vm(), vm(template=1), Change("template", False, True)),
        (node(), node(status="offline"), Change("status", "online", "offline")),
    ],
)
def test_change_holds_field_and_json_values(old: Row, new: Row, change: Change) -> None:
    assert [e.change for e in events_between([old], [new])] == [change]


def test_event_has_the_native_shape() -> None:
    old = snap([vm(pool="production", tags="web")])
    new = snap([vm(pool="production", tags="web", status="stopped")])
    (event,) = diff(old, new, NOW, late=True)
    d = event.to_dict()
    assert d.pop("id").startswith("evt_")
    assert d == {
        "type": "guest.stopped",
        "time": "2026-08-20T09:15:00Z",
        "cluster": "demo",
        "severity": "warning",
        "resource": {
            "id": "qemu/100",
            "type": "qemu",
            "vmid": 100,
            "name": "web1",
            "node": "pve1",
            "pool": "production",
            "tags": ["web"],
        },
        "change": {"field": "status", "old": "running", "new": "stopped"},
        "cause": None,
        "summary": "VM 100 (web1) on pve1 stopped",
        "detected_late": True,
        "condition": None,
        "resolves": None,
    }


def test_removal_refers_to_the_old_resource() -> None:
    (event,) = events_between([vm(pool="p")], [])
    assert event.resource is not None
    assert (event.resource.name, event.resource.node, event.resource.pool) == ("web1", "pve1", "p")


def test_first_snapshot_is_the_baseline() -> None:
    assert diff(None, snap([vm(), node(), storage()]), NOW) == []


def test_several_changes_of_one_guest_come_in_fixed_order() -> None:
    old = [vm(status="running", name="a", tags="x", pool="p")]
    new = [
        vm(
            status="stopped",
            name="b",
            tags="y",
            pool="q",
            node="pve2",
            lock="migrate",
            hastate="stopped",
        )
    ]
    types = [e.type for e in events_between(old, new)]
    assert types == [
        "guest.migrated",
        "guest.stopped",
        "guest.renamed",
        "guest.tags_changed",
        "guest.lock_changed",
        "guest.ha_state_changed",
        "guest.pool_changed",
    ]


def test_events_are_ordered_by_resource_id() -> None:
    old = [vm(101), vm(100), node("pve2"), storage()]
    new = [
        storage(status="unknown"),
        node("pve2", status="offline"),
        vm(100, status="stopped"),
        ct(200),
    ]
    ids = [e.resource.id for e in events_between(old, new) if e.resource]
    assert ids == ["lxc/200", "node/pve2", "qemu/100", "qemu/101", "storage/pve1/local-lvm"]


def test_event_ids_are_deterministic_per_transition_and_poll() -> None:
    old, new = snap([vm()]), snap([vm(status="stopped")])
    first, again = diff(old, new, NOW), diff(old, new, NOW)
    later = diff(old, new, NOW + timedelta(seconds=10))
    assert [e.id for e in first] == [e.id for e in again]
    assert first[0].id != later[0].id
    other_cluster = diff(old, Snapshot("other", new.resources, NOW), NOW)
    assert first[0].id != other_cluster[0].id
