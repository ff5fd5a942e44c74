"""The contract every sink must meet; each sink's tests call `check_sink_contract`.

A sink makes one attempt per `send` (of one event, or of a burst when it groups) and
either returns or raises `SinkError`; nothing else may escape, whatever the event holds
(names and summaries come from the PVE server). `aclose()` may be called twice, and
`send` after `aclose` still only returns or raises `SinkError`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import cast

from pvewatch.errors import SinkError
from pvewatch.model import Cause, Change, Event, JSONValue, ResourceRef, Severity
from pvewatch.sinks.base import Sink

T0 = datetime(2026, 11, 28, 1, 2, 3, tzinfo=UTC)


def guest_stopped(
    vmid: int = 100, *, cluster: str = "lab", time: datetime = T0, late: bool = False
) -> Event:
    """A realistic event: a VM stopped by a user."""
    return Event(
        id=f"evt_{vmid:026d}",
        type="guest.stopped",
        time=time,
        cluster=cluster,
        severity=Severity.WARNING,
        summary=f"VM {vmid} (web1) on pve1 stopped",
        resource=ResourceRef(f"qemu/{vmid}", "qemu", vmid, "web1", "pve1", "prod", ("web",)),
        change=Change("status", "running", "stopped"),
        cause=Cause("user", f"UPID:pve1:00001234:00ABCDEF:6743A1B3:qmstop:{vmid}:alice@pve:"),
        detected_late=late,
    )


def guest_started(problem: Event) -> Event:
    """The event that resolves `problem` (a `guest_stopped`): the guest runs again."""
    return dataclasses.replace(
        problem,
        id="evt_started",
        type="guest.started",
        severity=Severity.INFO,
        summary=problem.summary.replace("stopped", "started"),
        change=Change("status", "stopped", "running"),
        condition=f"guest.stopped:{problem.resource.id if problem.resource else ''}",
        resolves=problem.id,
    )


def sample_events() -> list[Event]:
    return [guest_stopped(100 + i) for i in range(3)]


def awkward_events() -> list[Event]:
    """Events a server can provoke: control characters, odd unicode, huge strings,
    missing parts, non-finite and non-JSON details."""
    odd_details = cast(
        "dict[str, JSONValue]",
        {"nan": math.nan, "inf": math.inf, "nested": {"a": [1, None, True]}, "set": {1, 2}},
    )
    return [
        Event(
            id="evt_controls",
            type="guest.renamed",
            time=T0,
            cluster="lab",
            severity=Severity.INFO,
            summary="VM 101 renamed\nFAKE 2026-01-01 CRITICAL forged line\r\x1b[31m\x00",
            resource=ResourceRef("qemu/101", "qemu", 101, "x\ny", "pve\t1", None, ("a\nb",)),
            change=Change("name", "old\n", "new\x00"),
        ),
        Event(
            id="evt_unicode",
            type="guest.started",
            time=T0,
            cluster="läb-🚀",
            severity=Severity.INFO,
            summary="VM 102 (wéb-\u2028-\ud800?) started" + "x" * 100_000,
            resource=ResourceRef("lxc/102", "lxc", 102, "名前"),
        ),
        Event(
            id="evt_bare",
            type="source.unreachable",
            time=T0,
            cluster="lab",
            severity=Severity.CRITICAL,
            summary="",
            cause=Cause("unknown"),
            details=odd_details,
        ),
    ]


async def send_ok_or_sink_error(sink: Sink, *events: Event) -> SinkError | None:
    """Send once; return the SinkError if any. Any other exception fails the test."""
    error: SinkError | None = None
    try:
        await sink.send(events)
    except SinkError as e:
        error = e
    assert error is None or isinstance(error.retryable, bool)
    return error


async def check_sink_contract(
    make_sink: Callable[[], Sink], events: Sequence[Event] | None = None
) -> None:
    sink = make_sink()
    assert isinstance(sink, Sink)
    assert isinstance(sink.name, str)
    assert sink.name
    assert isinstance(sink.groups, bool)
    for event in [*(events or sample_events()), *awkward_events()]:
        await send_ok_or_sink_error(sink, event)
    if sink.groups:  # a burst, as delivery hands it to a grouping sink
        await send_ok_or_sink_error(sink, *(events or sample_events()), *awkward_events())
    await sink.aclose()
    await sink.aclose()
    await send_ok_or_sink_error(sink, guest_stopped())
    await sink.aclose()
