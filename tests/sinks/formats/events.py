"""Events the format tests render: a firing problem, the event that resolves it, a
burst (a node going down with its guests and storages), and a hypothesis strategy that
builds any Event at all."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from pvewatch.model import EVENT_TYPES, Cause, Change, Event, ResourceRef, Severity
from pvewatch.sinks.formats.sample import sample_event

T0 = datetime(2026, 11, 28, 1, 2, 3, tzinfo=UTC)

FIRING = sample_event(T0)
RESOLVED = Event(
    id="evt_0resolved0000000000000000",
    type="guest.started",
    time=T0 + timedelta(minutes=5, seconds=30),
    cluster="prod",
    severity=Severity.INFO,
    summary="VM 100 (web1) on pve1 started by HA",
    resource=FIRING.resource,
    change=Change("status", "stopped", "running"),
    cause=Cause("ha", "UPID:pve1:00001240:00ABD000:65000150:qmstart:100:root@pam:", "root@pam"),
    condition=FIRING.condition,
    resolves=FIRING.id,
)
NODE_OFFLINE = Event(
    id="evt_0node000000000000000000000",
    type="node.offline",
    time=T0,
    cluster="prod",
    severity=Severity.CRITICAL,
    summary="Node pve3 offline",
    resource=ResourceRef("node/pve3", "node", node="pve3"),
    change=Change("status", "online", "offline"),
    cause=Cause("unplanned"),
    condition="node.offline:node/pve3",
)


def guest_stopped(vmid: int, name: str = "", node: str = "pve3") -> Event:
    label = f"VM {vmid}" + (f" ({name})" if name else "")
    return Event(
        id=f"evt_guest{vmid:021d}",
        type="guest.stopped",
        time=T0,
        cluster="prod",
        severity=Severity.WARNING,
        summary=f"{label} on {node} stopped",
        resource=ResourceRef(f"qemu/{vmid}", "qemu", vmid, name or None, node),
        change=Change("status", "running", "stopped"),
        cause=Cause("unplanned"),
    )


def burst(guests: int, name: str = "") -> list[Event]:
    storage = replace(
        NODE_OFFLINE,
        id="evt_0storage00000000000000000",
        type="storage.unavailable",
        severity=Severity.WARNING,
        summary="Storage local-lvm on pve3 unavailable",
        resource=ResourceRef("storage/pve3/local-lvm", "storage", node="pve3"),
        change=Change("status", "available", "unknown"),
        condition=None,
    )
    return [
        *(guest_stopped(100 + i, name) for i in range(guests)),
        NODE_OFFLINE,
        storage,
    ]


_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
_json_scalar = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text
_json = st.recursive(
    _json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_types = st.sampled_from(sorted(EVENT_TYPES)) | _text | st.just("task.failed")
_resources = st.builds(
    ResourceRef,
    id=_text,
    type=st.sampled_from(["qemu", "lxc", "node", "storage", "pool", "sdn"]) | _text,
    vmid=st.none() | st.integers(min_value=-1, max_value=10**12),
    name=st.none() | _text,
    node=st.none() | _text,
    pool=st.none() | _text,
    tags=st.lists(_text, max_size=4).map(tuple),
)
events = st.builds(
    Event,
    id=_text,
    type=_types,
    time=st.datetimes(timezones=st.just(UTC)),
    cluster=_text,
    severity=st.sampled_from(list(Severity)),
    summary=st.text(st.characters(codec=None), max_size=300),
    resource=st.none() | _resources,
    change=st.none() | st.builds(Change, field=_text, old=_json, new=_json),
    cause=st.none() | st.builds(Cause, kind=_text, task=st.none() | _text, user=st.none() | _text),
    detected_late=st.booleans(),
    condition=st.none() | _text,
    resolves=st.none() | _text,
    suppressed=st.none() | _text,
    details=st.dictionaries(_text, _json, max_size=3),
)
