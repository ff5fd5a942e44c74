"""Fakes for the delivery tests: the outbox in memory, a clock whose sleeps advance it,
and a sink that fails as scripted."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from pvewatch.errors import SinkError, StoreError
from pvewatch.model import Event
from tests.sinks.contract import T0, guest_stopped


@dataclass(frozen=True, slots=True)
class Item:
    outbox_id: int
    sink: str
    event: Event
    attempts: int = 0
    next_attempt_at: datetime = T0
    state: str = "pending"
    last_error: str | None = None
    queued_at: datetime = T0

    @property
    def line(self) -> tuple[str, str | None]:
        return (self.event.cluster, self.event.resource.id if self.event.resource else None)


class MemOutbox:
    """The store's outbox in memory, with the same semantics (thread-safe: to_thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rows: dict[int, Item] = {}
        self.calls: list[tuple[object, ...]] = []
        self.failing_reads = 0
        self.recorded: list[tuple[Event, list[str]]] = []

    def add(self, sink: str, *events: Event, at: datetime = T0, attempts: int = 0) -> None:
        with self._lock:
            for event in events:
                oid = len(self.rows) + 1
                self.rows[oid] = Item(oid, sink, event, attempts, at)

    def heads(
        self,
        sink: str,
        limit: int = 100,
        after: int = 0,
        clusters: Collection[str] | None = None,
    ) -> list[Item]:
        with self._lock:
            self.calls.append(("heads", sink))
            if self.failing_reads:
                self.failing_reads -= 1
                raise StoreError("state store /x: disk I/O error")
            heads: dict[tuple[str, str | None], Item] = {}
            for row in self.rows.values():
                if clusters is not None and row.line[0] not in clusters:
                    continue
                if row.sink == sink and row.state == "pending":
                    heads.setdefault(row.line, row)
            return [h for h in heads.values() if h.outbox_id > after][:limit]

    def mark_delivered(self, outbox_id: int, now: datetime) -> None:
        self._set(outbox_id, ("delivered", outbox_id, now), state="delivered")

    def mark_retry(
        self, outbox_id: int, *, attempts: int, next_attempt_at: datetime, error: str
    ) -> None:
        self._set(
            outbox_id,
            ("retry", outbox_id, attempts, next_attempt_at),
            attempts=attempts,
            next_attempt_at=next_attempt_at,
            last_error=error,
        )

    def mark_dead(self, outbox_id: int, *, attempts: int, error: str, now: datetime) -> None:
        self._set(
            outbox_id,
            ("dead", outbox_id, attempts),
            state="dead",
            attempts=attempts,
            last_error=error,
        )

    def _set(self, outbox_id: int, call: tuple[object, ...], **changes: object) -> None:
        with self._lock:
            self.calls.append(call)
            self.rows[outbox_id] = replace(self.rows[outbox_id], **changes)  # type: ignore[arg-type]

    def states(self) -> dict[int, str]:
        with self._lock:
            return {oid: r.state for oid, r in self.rows.items()}

    def marks(self) -> list[tuple[object, ...]]:
        with self._lock:
            return [c for c in self.calls if c[0] != "heads"]


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, secs: float) -> None:
        self.now += timedelta(seconds=secs)
        await asyncio.sleep(0)


class ScriptedSink:
    """Fails as scripted (one exception per attempt of a message holding that event,
    None = success), then succeeds. `hang`: every send waits for it first."""

    def __init__(
        self,
        name: str,
        clock: Callable[[], datetime],
        script: dict[str, list[BaseException | None]] | None = None,
        hang: asyncio.Event | None = None,
        groups: bool = False,
    ) -> None:
        self.name = name
        self.groups = groups
        self._clock = clock
        self._script = {k: list(v) for k, v in (script or {}).items()}
        self._hang = hang
        self.attempts: list[tuple[str, datetime]] = []
        self.messages: list[list[str]] = []
        self.delivered: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def send(self, events: Sequence[Event]) -> None:
        ids = [e.id for e in events]
        self.messages.append(ids)
        self.attempts += [(i, self._clock()) for i in ids]
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self._hang is not None:
                await self._hang.wait()
            failures = [f for i in ids if (f := self._next(i)) is not None]
            if failures:
                raise failures[0]
            self.delivered += ids
        finally:
            self.in_flight -= 1

    def _next(self, event_id: str) -> BaseException | None:
        planned = self._script.get(event_id, [])
        return planned.pop(0) if planned else None

    async def aclose(self) -> None:
        pass


def on(vmid: int, n: int = 0) -> Event:
    """The n-th event about VM `vmid` (events about one VM share a line)."""
    e = guest_stopped(vmid, time=T0 + timedelta(seconds=n))
    return replace(e, id=f"evt_{vmid}_{n}")


def events(count: int) -> list[Event]:
    """`count` events about different VMs."""
    return [on(100 + i) for i in range(count)]


def retryable(msg: str = "503 from server") -> SinkError:
    return SinkError(msg, retryable=True)
