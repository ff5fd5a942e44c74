"""One failure, one page: the same backup failure seen by two channels. Pure; a ground-layer
module, since the store applies it inside the transaction that records the second sighting.

A vzdump job that fails is seen twice: the poller reports its task (`task.failed`, task
type `vzdump`, from /cluster/tasks) and PVE's notification system posts `backup.failed`.
Whichever is recorded second is a duplicate of the first when they correlate:

- the same cluster and the same node (the task's node; the notification's `hostname`);
- the same guests, when both name some: a single-guest task names its VMID, the
  notification's guest table its VMIDs; a job of several guests runs as one task per node
  with no VMID, and then the node and the time decide;
- the time: the notification was sent (PVE's `timestamp`) between `WINDOW_SECS` before the
  task started and `WINDOW_SECS` after it ended (PVE sends it as the job ends);
- the first sighting has not absorbed another one already (two failures, two pages).

The job id cannot join them: a task does not carry it.

A replication failure is one condition whoever saw it (the replication check, PVE's
notification): `replication.failed:replication/<job>`. A `replication.failed` is a
duplicate of the one that opened its condition while no `replication.recovered` ended it,
when PVE counts it as a repeat (failure count above 1; PVE mails at 1, 2, 3, then after
1, 2, 4... days) or it comes within `WINDOW_SECS` of the first. The duplicate is recorded with
`suppressed: "duplicate"` and `details.duplicate_of` (sent nowhere); what it knew that the
first did not is merged into the first's details (`seen_as` names the duplicate), so a sink
that has not sent the first yet sends it complete, and history shows both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pvewatch.model import Event, JSONValue, parse_time
from pvewatch.upid import parse_upid

WINDOW_SECS = 900
# How far back (by the time events were recorded) the store looks for a first sighting: a
# poll after a long outage reports a failed task late.
LOOKBACK_SECS = 2 * 86_400
COUNTERPARTS: Mapping[str, str] = {"task.failed": "backup.failed", "backup.failed": "task.failed"}
# Problems that a condition key names whoever saw them (a check, a notification), and the
# event type that ends them.
CONDITIONS: Mapping[str, str] = {"replication.failed": "replication.recovered"}
DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class Sighting:
    node: str
    vmids: frozenset[int]
    start: float  # epoch seconds (PVE's clock)
    end: float


def wanted_types(event: Event) -> tuple[str, ...] | None:
    """The types of the stored events that decide whether `event` is a duplicate; None
    when it cannot be one."""
    if event.type in CONDITIONS:
        return (event.type, CONDITIONS[event.type]) if event.condition else None
    other = counterpart(event)
    return (other, event.type) if other is not None else None


def counterpart(event: Event) -> str | None:
    """The type of event `event` may duplicate, or None when it is not a sighting."""
    return COUNTERPARTS.get(event.type) if sighting(event) is not None else None


def sighting(event: Event) -> Sighting | None:
    d = event.details
    node = d.get("node")
    if not isinstance(node, str):
        return None
    try:
        if event.type == "task.failed" and d.get("task_type") == "vzdump":
            start, end = _epoch(d.get("starttime")), _epoch(d.get("endtime"))
            task_id = parse_upid(str(d.get("upid"))).id
            vmids = frozenset({int(task_id)}) if task_id.isdigit() else frozenset()
            return Sighting(node, vmids, start, end)
        if event.type == "backup.failed":
            sent = _epoch(d.get("sent_at"))
            return Sighting(node, _vmids(d.get("guests")), sent, sent)
    except (ValueError, TypeError):
        return None
    return None


def original_of(event: Event, recent: Sequence[Event]) -> Event | None:
    """The first sighting among `recent` (events recorded before) that `event` repeats."""
    if event.type in CONDITIONS:
        return _open_condition(event, recent)
    mine, wanted = sighting(event), counterpart(event)
    if mine is None or wanted is None or any(e.id == event.id for e in recent):
        return None  # not a sighting, or recorded already (the same one posted twice)
    taken = {e.details.get("duplicate_of") for e in recent if e.suppressed == DUPLICATE}
    found = []
    for other in recent:
        if other.type != wanted or other.cluster != event.cluster:
            continue
        if other.suppressed == DUPLICATE or other.id in taken:
            continue
        theirs = sighting(other)
        if theirs is not None and _correlate(mine, theirs):
            found.append((abs(_middle(theirs) - _middle(mine)), other.time, other))
    return min(found, key=lambda f: (f[0], f[1]))[2] if found else None


def _open_condition(event: Event, recent: Sequence[Event]) -> Event | None:
    """The event that opened `event`'s condition, when it is still open and `event`
    repeats it: PVE says so (a failure count above 1), or it came within `WINDOW_SECS`
    (the other source's sighting of the same failure). A failure after the condition
    ended, or a first failure long after, is a page of its own."""
    if event.condition is None or any(e.id == event.id for e in recent):
        return None
    same = [e for e in recent if e.condition == event.condition]
    opened = [e for e in same if e.type == event.type and e.suppressed != DUPLICATE]
    if not opened:
        return None
    first = max(opened, key=lambda e: e.time)
    end = CONDITIONS[event.type]
    if any(e.resolves == first.id or (e.type == end and e.time >= first.time) for e in same):
        return None
    count = event.details.get("fail_count")
    repeat = isinstance(count, int) and not isinstance(count, bool) and count > 1
    close = abs((event.time - first.time).total_seconds()) <= WINDOW_SECS
    return first if repeat or close else None


def marked(duplicate: Event, original: Event) -> tuple[Event, Event]:
    """The duplicate as recorded (suppressed, pointing at the original) and the original
    with the duplicate's details merged in (its own values win)."""
    extra = {k: v for k, v in duplicate.details.items() if k not in original.details}
    seen_as: JSONValue = {"id": duplicate.id, "type": duplicate.type}
    merged = {**original.details, **extra, "seen_as": seen_as}
    details = {**duplicate.details, "duplicate_of": original.id}
    return (
        dataclasses.replace(duplicate, suppressed=DUPLICATE, details=details),
        dataclasses.replace(original, details=merged),
    )


def _correlate(a: Sighting, b: Sighting) -> bool:
    if a.node != b.node:
        return False
    if a.vmids and b.vmids and not a.vmids & b.vmids:
        return False
    return a.start - WINDOW_SECS <= b.end and b.start - WINDOW_SECS <= a.end


def _middle(s: Sighting) -> float:
    return (s.start + s.end) / 2


def _epoch(value: object) -> float:
    if not isinstance(value, str):
        raise ValueError("not a time")
    return parse_time(value).timestamp()


def _vmids(guests: object) -> frozenset[int]:
    if not isinstance(guests, list):
        return frozenset()
    found = set()
    for guest in guests:
        vmid = guest.get("vmid") if isinstance(guest, dict) else None
        if isinstance(vmid, int) and not isinstance(vmid, bool):
            found.add(vmid)
    return frozenset(found)
