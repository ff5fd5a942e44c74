"""The delivery loop of one sink: outbox rows → messages → the sink → recorded outcome.

Each round reads the heads of the lines (`Outbox.heads`: the oldest pending row of each
resource), page by page, and starts a send for each head that is due and whose line is
not busy, while fewer than `concurrency` sends are in flight and the rate limit allows.
A retrying head holds back only the later events of its own resource. A grouping sink
(chat formats) gets the due heads as one message, after `group_wait_secs` for a new
burst.

The decisions are pure functions (`policy`, `schedule`); this module does the I/O: the
store is synchronous and called through `asyncio.to_thread`, the sink is awaited with a
timeout. A sink that raises something unexpected, hangs or fails forever only delays
its own events: it never ends the loop, and never blocks polling or the other sinks. A
sink whose receiver answers 410 Gone is disabled until pvewatch restarts or reloads; its
events stay queued.

Over 350 lines: one class, the loop of one sink; its stages (policy, schedule,
attempt) are already modules of their own.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from pvewatch.deliver.attempt import record, send_once, sink_disabled_event
from pvewatch.deliver.marks import GroupMarks
from pvewatch.deliver.policy import Delivered, PendingItem, RetryPolicy, decide_message
from pvewatch.deliver.schedule import MAX_GROUP, RateLimit, is_new, plan_messages
from pvewatch.deliver.settings import Settings
from pvewatch.errors import SinkError, SinkGone
from pvewatch.model import Event
from pvewatch.observability.observe import NullObserver, Observer
from pvewatch.sinks.base import Sink

Line = tuple[str, str | None]


class Outbox(Protocol):
    """The part of the store that delivery uses (SqliteStore implements it)."""

    def heads(
        self,
        sink: str,
        limit: int = 100,
        after: int = 0,
        clusters: Collection[str] | None = None,
    ) -> Sequence[PendingItem]: ...
    def mark_delivered(self, outbox_id: int, now: datetime) -> None: ...
    def mark_retry(
        self, outbox_id: int, *, attempts: int, next_attempt_at: datetime, error: str
    ) -> None: ...
    def mark_dead(self, outbox_id: int, *, attempts: int, error: str, now: datetime) -> None: ...


@dataclass(slots=True)
class _Heads:
    due: list[PendingItem]  # due heads of free lines, oldest first
    waits: list[float]  # seconds until each head seen but not due is due
    pending: bool  # the sink has pending rows
    settling: bool  # a line was skipped because its send just finished


@dataclass(frozen=True, slots=True)
class _Round:
    pending: bool  # the sink has pending rows (due or not)
    started: int  # sends started by this round
    again: bool  # a line was skipped because it just finished: look again at once
    wait: float | None  # seconds until a head's retry time, a hold or a group wait ends
    limit_wait: float | None  # seconds until the rate limit allows the next send


class Deliverer:
    """Moves one sink's outbox rows to the sink. `run()` until `stop()`; `wake()` after
    each commit; `drain()` for one-shot runs and shutdown."""

    def __init__(
        self,
        outbox: Outbox,
        sink: Sink,
        *,
        policy: RetryPolicy,
        clock: Callable[[], datetime],
        rng: random.Random,
        logger: logging.Logger,
        settings: Settings | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        idle_secs: float = 5.0,
        send_timeout_secs: float = 300.0,  # a backstop: a webhook times out on its own
        page_size: int = 50,
        observer: Observer | None = None,
        on_disabled: Callable[[str, Event], Awaitable[None]] | None = None,
        clusters: Callable[[], Collection[str] | None] = lambda: None,
    ) -> None:
        """`clusters`: whose rows to deliver, asked at each read (None: every cluster's);
        with replicas, the clusters this one leads."""
        self._outbox = outbox
        self._clusters = clusters
        self._sink = sink
        self._policy = policy
        self._clock = clock
        self._rng = rng
        self._log = logger
        self._settings = settings or Settings()
        self._sleep = sleep
        self._idle_secs = idle_secs
        self._send_timeout_secs = send_timeout_secs
        self._page_size = page_size
        self._observer = observer or NullObserver()
        self._on_disabled = on_disabled
        self._limit = RateLimit(self._settings.max_per_minute)
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._stopping = asyncio.Event()
        self._run_task: asyncio.Task[None] | None = None
        # One round at a time (run() and drain() may both call it).
        self._round_lock = asyncio.Lock()
        self._in_flight: dict[asyncio.Task[None], frozenset[Line]] = {}
        # Lines whose send finished while a round was reading the heads: that read may
        # predate the outcome, so the line waits for the next round (no double send).
        self._settling: set[Line] = set()
        self._hold_until: datetime | None = None  # Retry-After, or a store failure
        self._group_opened: datetime | None = None
        # A store that marks many rows delivered in one transaction gets the marks of
        # sends that finish together as one write (one fsync instead of one each).
        many = getattr(outbox, "mark_delivered_many", None)
        self._marks = GroupMarks(many) if many is not None else None
        self.disabled = False

    @property
    def sink_name(self) -> str:
        return self._sink.name

    def wake(self) -> None:
        """New work was committed: look at the outbox now (retry times still hold)."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver until `stop()`. Never raises for what a sink or the store does."""
        self._run_task = asyncio.current_task()
        while not self._stopping.is_set():
            self._wake.clear()
            self._progress.clear()
            r = await self._round(flushing=False)
            waits = [w for w in (r.wait, r.limit_wait) if w is not None]
            if r.again:
                continue
            if waits:
                await self._wait(min(waits))
            else:
                await self._wait(None if self._in_flight else self._idle_secs)

    async def stop(self, grace_secs: float = 5.0) -> None:
        """End `run()`: waits end at once; sends in flight get `grace_secs` to finish, then
        they are cancelled (their events stay pending and go again on the next start)."""
        self._stopping.set()
        sends = list(self._in_flight)
        if sends:
            await asyncio.wait(sends, timeout=grace_secs)
        unfinished = [t for t in sends if not t.done()]
        if unfinished:
            self._log.warning("sink %s: cancelling a send that did not finish", self.sink_name)
            for task in unfinished:
                task.cancel()
            await asyncio.wait(unfinished)
        if self._run_task is not None and not self._run_task.done():
            await asyncio.wait({self._run_task})

    async def drain(self, timeout_secs: float) -> bool:
        """Send everything due now (no group wait, no waiting for retry times). True when
        no event is left pending for this sink."""
        try:
            async with asyncio.timeout(timeout_secs):
                while True:
                    self._progress.clear()
                    r = await self._round(flushing=True)
                    if self._in_flight:
                        await self._progress.wait()
                    elif r.limit_wait is not None:
                        await self._sleep(r.limit_wait)
                    elif not (r.started or r.again):
                        return not r.pending
        except TimeoutError:
            self._log.warning(
                "sink %s: drain stopped after %.1fs with events pending",
                self.sink_name,
                timeout_secs,
            )
            return False

    # --- one round: read the heads, start what may start -------------------------------

    async def _round(self, *, flushing: bool) -> _Round:
        try:
            async with self._round_lock:
                return await self._dispatch(flushing)
        except Exception as e:
            # The store is down or broken: keep the loop alive and try again later.
            self._log.error(
                "sink %s: outbox access failed: %s: %s", self.sink_name, type(e).__name__, e
            )
            return _Round(True, 0, False, self._idle_secs, None)

    async def _dispatch(self, flushing: bool) -> _Round:
        self._settling.clear()
        now = self._clock()
        slots = self._settings.concurrency - len(self._in_flight)
        if self.disabled or (self._stopping.is_set() and not flushing):
            page = await asyncio.to_thread(
                self._outbox.heads, self.sink_name, 1, 0, self._clusters()
            )
            return _Round(bool(page), 0, False, None, None)
        if slots <= 0:  # a send that finishes starts the next round
            return _Round(True, 0, False, None, None)
        if self._hold_until is not None and self._hold_until > now:
            return _Round(True, 0, False, (self._hold_until - now).total_seconds(), None)
        if limit_wait := self._limit.wait(now):
            return _Round(True, 0, False, None, limit_wait)
        grouped = self._sink.groups
        heads = await self._due_heads(now, slots * (MAX_GROUP if grouped else 1))
        started = 0
        for message in plan_messages(heads.due, grouped=grouped):
            if len(self._in_flight) >= self._settings.concurrency:
                break
            if is_new(message) and not flushing:
                group_wait = self._group_wait(now)
                if group_wait > 0:
                    heads.waits.append(group_wait)
                    continue
            if limit_wait := self._limit.wait(now):
                return _Round(True, started, heads.settling, None, limit_wait)
            self._limit.note(now)
            self._start(message)
            started += 1
            if is_new(message):
                self._group_opened = None  # the next new event opens the next burst
        wait = min(heads.waits, default=None)
        return _Round(heads.pending, started, heads.settling, wait, None)

    async def _due_heads(self, now: datetime, wanted: int) -> _Heads:
        """The due heads of lines not busy, oldest first, read page by page until `wanted`
        are found or every head was seen (a line that waits never hides the others)."""
        busy: set[Line] = set().union(*self._in_flight.values())
        heads = _Heads([], [], False, False)
        clusters = self._clusters()
        after = 0
        # The first page holds just enough rows for what is wanted (each row read is an
        # event decoded): in a burst, a send that finishes wants one head, not 50. Pages
        # after it are full ones, so a long line of waiting heads is still read quickly.
        size = min(self._page_size, wanted + len(busy) + len(self._settling))
        while len(heads.due) < wanted:
            page = await asyncio.to_thread(
                self._outbox.heads, self.sink_name, size, after, clusters
            )
            heads.pending = heads.pending or bool(page)
            for head in page:
                if head.line in busy:
                    continue
                if head.line in self._settling:
                    heads.settling = True
                elif head.next_attempt_at > now:
                    heads.waits.append((head.next_attempt_at - now).total_seconds())
                else:
                    heads.due.append(head)
            if len(page) < size:
                break
            after = page[-1].outbox_id
            size = self._page_size
        return heads

    def _group_wait(self, now: datetime) -> float:
        """Seconds a new burst still waits for more events to join it (grouping sinks)."""
        if not self._sink.groups or self._settings.group_wait_secs <= 0:
            return 0.0
        if self._group_opened is None:
            self._group_opened = now
        ends = self._group_opened + timedelta(seconds=self._settings.group_wait_secs)
        return max((ends - now).total_seconds(), 0.0)

    def _start(self, message: list[PendingItem]) -> None:
        task = asyncio.create_task(self._deliver(message), name=f"deliver:{self.sink_name}")
        self._in_flight[task] = frozenset(item.line for item in message)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._settling |= self._in_flight.pop(task, frozenset())
        self._progress.set()

    # --- one message: send, decide, record ---------------------------------------------

    async def _deliver(self, message: list[PendingItem]) -> None:
        try:
            started = time.perf_counter()
            events = [item.event for item in message]
            error = await send_once(self._sink, events, self._send_timeout_secs, self._log)
            duration = time.perf_counter() - started
            now = self._clock()
            if isinstance(error, SinkGone):
                await self._disable(message, error, now)
                return
            if error is not None and error.retry_after_secs is not None:
                # A throttled receiver (429/503 with Retry-After) gets no other message
                # from this sink until then, about any resource.
                self._hold(now + timedelta(seconds=error.retry_after_secs))
            outcomes = decide_message(message, error, now, self._policy, self._rng)
            for item, outcome in zip(message, outcomes, strict=True):
                if isinstance(outcome, Delivered) and self._marks is not None:
                    await self._marks.mark(item.outbox_id, now)
                    self._log.debug("sink %s: delivered event %s", self.sink_name, item.event.id)
                else:
                    await record(self._outbox, self.sink_name, item, outcome, now, self._log)
                self._observer.delivery_finished(
                    self.sink_name, outcome=type(outcome).__name__.lower(), duration_secs=duration
                )
        except Exception as e:
            # Recording failed (disk full?): the rows stay pending and are sent again;
            # the hold keeps a broken store from turning that into a busy loop.
            self._log.error(
                "sink %s: cannot record a delivery: %s: %s", self.sink_name, type(e).__name__, e
            )
            self._hold(self._clock() + timedelta(seconds=self._idle_secs))

    def _hold(self, until: datetime) -> None:
        if self._hold_until is None or until > self._hold_until:
            self._hold_until = until

    async def _disable(self, message: list[PendingItem], error: SinkError, now: datetime) -> None:
        """410 Gone: stop sending to this sink; its rows stay pending for the next start."""
        self.disabled = True
        reason = str(error)
        for item in message:  # pending, as they were: the next start sends them
            await asyncio.to_thread(
                self._outbox.mark_retry,
                item.outbox_id,
                attempts=item.attempts + 1,
                next_attempt_at=now,
                error=reason,
            )
        self._log.error(
            "sink %s DISABLED: %s. Its events stay queued and are sent after pvewatch "
            "restarts or reloads (fix the sink's url first).",
            self.sink_name,
            reason,
        )
        self._observer.sink_enabled(self.sink_name, False)
        if self._on_disabled is not None:
            await self._on_disabled(
                self.sink_name, sink_disabled_event(self.sink_name, reason, now)
            )

    async def _wait(self, secs: float | None) -> None:
        """Wait `secs` (through the injected sleep; None: no timer) or until stopped, woken
        by new work, or a send finished."""
        ends: list[asyncio.Future[object]] = [
            asyncio.ensure_future(self._stopping.wait()),
            asyncio.ensure_future(self._wake.wait()),
            asyncio.ensure_future(self._progress.wait()),
        ]
        if secs is not None:
            ends.append(asyncio.ensure_future(self._sleep(secs)))
        try:
            await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in ends:
                task.cancel()
            await asyncio.gather(*ends, return_exceptions=True)
