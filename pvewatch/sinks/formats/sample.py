"""A sample event that looks like a real one: what `pvewatch test-sink` sends, what a
template is tried on at config load, and what the format documentation shows."""

from __future__ import annotations

from datetime import datetime

from pvewatch.model import Cause, Change, Event, ResourceRef, Severity, event_id


def sample_event(time: datetime, cluster: str = "prod") -> Event:
    """`guest.stopped` of VM 100 (web1) on pve1, stopped by alice@pve."""
    change = Change("status", "running", "stopped")
    return Event(
        id=event_id(cluster, "guest.stopped", "qemu/100", change, time),
        type="guest.stopped",
        time=time,
        cluster=cluster,
        severity=Severity.WARNING,
        summary="VM 100 (web1) on pve1 stopped by alice@pve",
        resource=ResourceRef("qemu/100", "qemu", 100, "web1", "pve1", "prod", ("web",)),
        change=change,
        cause=Cause(
            "user", "UPID:pve1:00001234:00ABCDEF:65000000:qmstop:100:alice@pve:", "alice@pve"
        ),
        condition="guest.stopped:qemu/100",
    )
