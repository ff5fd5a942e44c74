"""What both stores (SQLite and PostgreSQL) write and read, as plain values: the JSON of
resources, events and rule state, the rows a poll writes, and the objects read back.
Pure: no database here; each store brings its own time type (`Stamp`: epoch seconds for
SQLite, datetime for PostgreSQL) through the converters it passes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pvewatch import duplicates
from pvewatch.errors import StoreError
from pvewatch.model import Event, Resource, same_resources
from pvewatch.silence import Silence, parse_match
from pvewatch.store.base import OutboxItem, Queue, Routing

Stamp = TypeVar("Stamp", float, datetime)
EventRow = tuple[str, str, str, Any, Any, str]  # id, cluster, type, time, created_at, data
OutboxRow = tuple[str, str, str, str | None, Any, Any]  # event, sink, cluster, line, due, now


def to_json(obj: object, what: str) -> str:
    try:
        return json.dumps(obj, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise StoreError(f"cannot store {what}: {e}") from None


def changed_resources(
    cluster: str, new: Mapping[str, Resource], old: Mapping[str, Resource]
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """The (cluster, id, data) rows to upsert and the (cluster, id) rows to delete to go
    from `old` to `new`; resources equal to the stored ones are not written again."""
    if same_resources(old, new):
        return [], []  # a quiet poll: one check in C instead of two loops
    changed = [
        (cluster, rid, to_json(r.to_dict(), f"resource {cluster}/{rid}"))
        for rid, r in new.items()
        if (was := old.get(rid)) is not r and was != r  # `is`: Normalizer reuses them
    ]
    removed = [(cluster, rid) for rid in old if rid not in new]
    return changed, removed


def event_rows(
    events: Sequence[Event],
    sinks: Routing,
    now: Stamp,
    stamp: Callable[[datetime], Stamp],
) -> tuple[list[EventRow], list[OutboxRow]]:
    """The event rows and one outbox row per (event, sink) `sinks` routes it to."""
    route = sinks if callable(sinks) else (lambda event: sinks)
    events_out: list[EventRow] = []
    outbox: list[OutboxRow] = []
    for e in events:
        data = to_json(e.to_dict(), f"event {e.id}")
        time = stamp(e.time)
        events_out.append((e.id, e.cluster, e.type, time, now, data))
        # Due at once: the earlier of the event's time and ours, so neither a test's
        # fake clock nor a skewed one holds the row back.
        first_attempt = min(time, now)
        rid = e.resource.id if e.resource else None
        # A second sighting goes nowhere, whatever the caller routed before it was one.
        sinks_of_e = () if e.suppressed == duplicates.DUPLICATE else route(e)
        outbox += [(e.id, s, e.cluster, rid, first_attempt, now) for s in sinks_of_e]
    return events_out, outbox


def deduplicated(
    events: Sequence[Event], recent: Callable[[Event, tuple[str, ...]], list[Event]]
) -> tuple[list[Event], list[Event]]:
    """`events` with the second sightings of a failure marked duplicates
    (pvewatch.duplicates), and the stored events to write again with what the duplicates
    added. `recent(event, types)`: the stored events of the event's cluster of these types
    recorded in the last `duplicates.LOOKBACK_SECS` (read in the transaction that records
    `events`, under the store's write lock)."""
    out: list[Event] = []
    updated: dict[str, Event] = {}
    for event in events:
        wanted = duplicates.wanted_types(event)
        if wanted is not None:
            stored = [updated.get(e.id, e) for e in recent(event, wanted)]
            original = duplicates.original_of(event, stored)
            if original is not None:
                event, updated[original.id] = duplicates.marked(event, original)
        out.append(event)
    return out, list(updated.values())


def queues(
    counts: Iterable[Sequence[Any]], last_error: Callable[[str, str], Sequence[Any] | None]
) -> list[Queue]:
    """Each sink's Queue from rows of (sink, state, count) and, per (sink, state), the
    (outbox_id, error) of its newest row with an error: the newer of pending and dead."""
    found: dict[str, dict[str, int]] = {}
    errors: dict[str, tuple[int, str | None]] = {}
    for sink, state, n in counts:
        found.setdefault(sink, {})[state] = int(n)
        newest = last_error(sink, state)
        if newest is not None and newest[0] > errors.get(sink, (0, None))[0]:
            errors[sink] = (newest[0], newest[1])
    return [
        Queue(sink, n.get("pending", 0), n.get("dead", 0), errors.get(sink, (0, None))[1])
        for sink, n in sorted(found.items())
    ]


# Each sink's rows pending and dead, for `queues` (the same SQL in both stores). Two
# queries, not one with `state IN (...)`: each walks its partial index.
QUEUE_COUNTS = """
    SELECT sink, 'pending', count(*) FROM outbox WHERE state = 'pending' GROUP BY sink
    UNION ALL
    SELECT sink, 'dead', count(*) FROM outbox WHERE state = 'dead' GROUP BY sink"""


def select_events(
    conditions: Sequence[tuple[str, str, Any]], mark: Callable[[str], str], limit: int
) -> tuple[str, dict[str, Any]]:
    """`SELECT seq, data FROM events`, newest first, with only the conditions whose value
    is not None, so that the database can pick the index that fits (cluster, id, time,
    or seq alone). A condition is (SQL with `{}` where its parameter goes, the
    parameter's name, its value); `mark` writes a parameter in the store's style."""
    given = [(sql, name, value) for sql, name, value in conditions if value is not None]
    where = " AND ".join(sql.format(mark(name)) for sql, name, _ in given) or "1 = 1"
    params = {name: value for _, name, value in given} | {"limit": limit}
    # Only the fixed conditions of the stores are joined; every value is a parameter.
    statement = f"SELECT seq, data FROM events WHERE {where} ORDER BY seq DESC"  # noqa: S608
    return f"{statement} LIMIT {mark('limit')}", params


class Reader:
    """Turns stored rows back into objects; what cannot be read is a StoreError naming
    the store (`where`) and the row."""

    def __init__(self, where: str, to_datetime: Callable[[Any], Any]) -> None:
        self.where = where
        self._dt = to_datetime

    def event(self, data: str, what: str) -> Event:
        try:
            return Event.from_dict(json.loads(data))
        except (ValueError, KeyError, TypeError) as e:
            raise StoreError(f"state store {self.where}: {what} is unreadable: {e!r}") from None

    def resource(self, cluster: str, rid: str, data: str) -> Resource:
        try:
            return Resource.from_dict(json.loads(data))
        except (ValueError, KeyError, TypeError) as e:
            raise StoreError(
                f"state store {self.where}: resource {cluster}/{rid} is unreadable: {e!r}"
            ) from None

    def rule_state(self, cluster: str, data: str) -> dict[str, Any]:
        try:
            found = json.loads(data)
        except ValueError as e:
            raise StoreError(
                f"state store {self.where}: rule state of {cluster!r} is unreadable: {e}"
            ) from None
        return found if isinstance(found, dict) else {}

    def item(self, r: Sequence[Any]) -> OutboxItem:
        """A row of (outbox_id, sink, event data, attempts, next_attempt_at, state,
        last_error, cluster, resource_id, created_at)."""
        return OutboxItem(
            outbox_id=r[0],
            sink=r[1],
            event=self.event(r[2], f"outbox row {r[0]}"),
            attempts=r[3],
            next_attempt_at=self._dt(r[4]),
            state=r[5],
            last_error=r[6],
            cluster=r[7],
            resource_id=r[8],
            queued_at=self._dt(r[9]),
        )

    def silence(self, row: Sequence[Any]) -> Silence:
        """A row of (id, match, starts_at, ends_at, comment, created_by)."""
        try:
            matchers = parse_match(row[1])
        except ValueError as e:
            raise StoreError(
                f"state store {self.where}: silence {row[0]} is unreadable: {e}"
            ) from None
        return Silence(str(row[0]), matchers, self._dt(row[2]), self._dt(row[3]), row[4], row[5])

    def may_mark(self, what: str, found: Sequence[Any] | None, target: str) -> bool:
        """Whether a mark_* applies to a row in state `found[0]`: a pending row changes;
        marking a row again with its state is a no-op (False); anything else is an error."""
        if found is None:
            raise StoreError(f"state store {self.where}: {what}: no such row")
        if found[0] == "pending":
            return True
        if found[0] != target:
            raise StoreError(f"state store {self.where}: {what}: it is {found[0]}")
        return False
