"""Delivery: outbox → sink, one Deliverer per sink.

Each Deliverer sends its sink's pending events strictly in outbox order (head of line: a
failing head blocks the events behind it, so a consumer never sees them reordered). A
retryable failure is retried with capped exponential backoff and jitter (`RetryPolicy`);
a non-retryable failure or an exhausted policy moves the event to the dead letter state.

The decision is a pure function (`decide`); the loop only does I/O: the store is
synchronous and called through `asyncio.to_thread`, the sink is awaited with a timeout.
A sink that raises something unexpected, hangs or fails forever only delays its own
events: it never ends the loop, and never blocks polling or the other sinks.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from pvewatch.errors import SinkError
from pvewatch.model import Event
from pvewatch.observe import NullObserver, Observer
from pvewatch.sinks import Sink

# Asking the store for items due before this far ahead returns every pending item, so the
# head is seen even when its retry is scheduled in the future (order survives restarts).
_HORIZON = timedelta(days=365 * 100)


class PendingItem(Protocol):
    """The fields of an outbox row that delivery reads."""

    @property
    def outbox_id(self) -> int: ...
    @property
    def event(self) -> Event: ...
    @property
    def attempts(self) -> int: ...
    @property
    def next_attempt_at(self) -> datetime: ...


class Outbox(Protocol):
    """The part of the store that delivery uses (SqliteStore implements it)."""

    def due(self, sink: str, now: datetime, limit: int = 100) -> Sequence[PendingItem]: ...
    def mark_delivered(self, outbox_id: int, now: datetime) -> None: ...
    def mark_retry(
        self, outbox_id: int, *, attempts: int, next_attempt_at: datetime, error: str
    ) -> None: ...
    def mark_dead(self, outbox_id: int, *, attempts: int, error: str, now: datetime) -> None: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    initial_secs: float = 1.0
    max_secs: float = 300.0
    multiplier: float = 2.0
    jitter: float = 0.2  # each delay is scaled by a random factor in [1 - jitter, 1 + jitter]
    max_attempts: int | None = None
    max_age_secs: float | None = None  # events older than this are not retried

    def __post_init__(self) -> None:
        if not 0 < self.initial_secs <= self.max_secs:
            raise ValueError("retry: need 0 < initial_secs <= max_secs")
        if self.multiplier < 1:
            raise ValueError("retry: multiplier must be >= 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("retry: jitter must be in [0, 1)")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("retry: max_attempts must be >= 1")

    def base_delay(self, attempts: int) -> float:
        """The delay after `attempts` failed attempts, before jitter."""
        try:
            raw = self.initial_secs * self.multiplier ** max(attempts - 1, 0)
        except OverflowError:
            return self.max_secs
        return min(raw, self.max_secs)

    def next_delay(self, attempts: int, rng: random.Random) -> float:
        """Seconds to wait after `attempts` failed attempts: exponential, jittered so that
        many retrying events do not come back in lockstep, never above `max_secs`."""
        factor = 1.0 + self.jitter * (2.0 * rng.random() - 1.0)
        return min(max(self.base_delay(attempts) * factor, 0.0), self.max_secs)


@dataclass(frozen=True, slots=True)
class Delivered:
    pass


@dataclass(frozen=True, slots=True)
class Retry:
    at: datetime
    attempts: int
    error: str


@dataclass(frozen=True, slots=True)
class Dead:
    attempts: int
    error: str


Outcome = Delivered | Retry | Dead


def decide(
    item: PendingItem,
    error: SinkError | None,
    now: datetime,
    policy: RetryPolicy,
    rng: random.Random,
) -> Outcome:
    """What to record after one attempt at `item` that ended with `error` (None = sent)."""
    if error is None:
        return Delivered()
    attempts = item.attempts + 1
    message = str(error) or type(error).__name__
    if not error.retryable:
        return Dead(attempts, message)
    if policy.max_attempts is not None and attempts >= policy.max_attempts:
        return Dead(attempts, f"gave up after {attempts} attempts: {message}")
    age = (now - item.event.time).total_seconds()
    if policy.max_age_secs is not None and age >= policy.max_age_secs:
        return Dead(attempts, f"gave up after {age:.0f}s: {message}")
    delay = policy.next_delay(attempts, rng)
    if error.retry_after_secs is not None and math.isfinite(error.retry_after_secs):
        # The server knows best when it will take requests again, within our cap.
        delay = max(delay, min(error.retry_after_secs, policy.max_secs))
    return Retry(now + timedelta(seconds=delay), attempts, message)


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
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        idle_secs: float = 5.0,
        send_timeout_secs: float = 60.0,
        batch: int = 100,
        observer: Observer | None = None,
    ) -> None:
        self._outbox = outbox
        self._observer = observer or NullObserver()
        self._sink = sink
        self._policy = policy
        self._clock = clock
        self._rng = rng
        self._log = logger
        self._sleep = sleep
        self._idle_secs = idle_secs
        self._send_timeout_secs = send_timeout_secs
        self._batch = batch
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._run_task: asyncio.Task[None] | None = None
        # Only one of run() and drain() sends at a time, so order holds and nothing is
        # sent twice.
        self._sending = asyncio.Lock()

    @property
    def sink_name(self) -> str:
        return self._sink.name

    def wake(self) -> None:
        """New work was committed: end an idle wait (a retry wait keeps its schedule)."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver until `stop()`. Never raises for what a sink or the store does."""
        self._run_task = asyncio.current_task()
        while not self._stopping.is_set():
            self._wake.clear()
            wait = await self._step()
            if wait is None:
                await self._wait(self._idle_secs, woken_by_new_work=True)
            elif wait > 0:
                await self._wait(wait, woken_by_new_work=False)

    async def stop(self, grace_secs: float = 5.0) -> None:
        """End `run()`: waits end at once; an event being sent gets `grace_secs` to finish,
        then it is cancelled (it stays pending and is sent again on the next start)."""
        self._stopping.set()
        task = self._run_task
        if task is None or task.done():
            return
        await asyncio.wait({task}, timeout=grace_secs)
        if not task.done():
            self._log.warning("sink %s: cancelling a send that did not finish", self.sink_name)
            task.cancel()
            await asyncio.wait({task})

    async def drain(self, timeout_secs: float) -> bool:
        """Send everything due now, in order, without waiting for retries. True when no
        event is left pending for this sink."""
        try:
            async with asyncio.timeout(timeout_secs):
                while (wait := await self._step(ignore_stop=True)) == 0:
                    pass
                # None: the store has nothing pending for this sink. A wait: the head
                # failed, is scheduled later, or the store failed.
                return wait is None
        except TimeoutError:
            self._log.warning(
                "sink %s: drain stopped after %.1fs with events pending",
                self.sink_name,
                timeout_secs,
            )
            return False

    async def _step(self, *, ignore_stop: bool = False) -> float | None:
        """Send due items from the head. Returns None when idle, else seconds until the
        head may be tried again (0 = more to do now)."""
        try:
            async with self._sending:
                return await self._send_batch(ignore_stop)
        except Exception as e:
            # The store is down or broken: keep the loop alive and try again later.
            self._log.error(
                "sink %s: outbox access failed: %s: %s", self.sink_name, type(e).__name__, e
            )
            return self._idle_secs

    async def _send_batch(self, ignore_stop: bool) -> float | None:
        horizon = self._clock() + _HORIZON
        items = await asyncio.to_thread(self._outbox.due, self.sink_name, horizon, self._batch)
        if not items:
            return None
        for item in items:
            if self._stopping.is_set() and not ignore_stop:
                return 0.0
            now = self._clock()
            if item.next_attempt_at > now:
                return (item.next_attempt_at - now).total_seconds()
            outcome = await self._attempt(item)
            if isinstance(outcome, Retry):
                return max((outcome.at - self._clock()).total_seconds(), 0.0)
        return 0.0

    async def _attempt(self, item: PendingItem) -> Outcome:
        started = time.perf_counter()
        error = await self._send(item.event)
        duration = time.perf_counter() - started
        now = self._clock()
        outcome = decide(item, error, now, self._policy, self._rng)
        await self._record(item, outcome, now)
        self._observer.delivery_finished(
            self.sink_name, outcome=type(outcome).__name__.lower(), duration_secs=duration
        )
        return outcome

    async def _send(self, event: Event) -> SinkError | None:
        try:
            async with asyncio.timeout(self._send_timeout_secs):
                await self._sink.send(event)
        except SinkError as e:
            return e
        except TimeoutError:
            return SinkError(f"no answer within {self._send_timeout_secs}s", retryable=True)
        except Exception as e:
            # A sink bug must not end delivery. Its message is not logged: it may carry a
            # URL or header the sink should have kept to itself.
            self._log.error(
                "sink %s: unexpected %s while sending event %s; will retry",
                self.sink_name,
                type(e).__name__,
                event.id,
            )
            return SinkError(f"unexpected {type(e).__name__} in sink", retryable=True)
        return None

    async def _record(self, item: PendingItem, outcome: Outcome, now: datetime) -> None:
        name, event = self.sink_name, item.event
        match outcome:
            case Delivered():
                await asyncio.to_thread(self._outbox.mark_delivered, item.outbox_id, now)
                self._log.debug("sink %s: delivered event %s", name, event.id)
            case Retry(at=at, attempts=attempts, error=error):
                await asyncio.to_thread(
                    self._outbox.mark_retry,
                    item.outbox_id,
                    attempts=attempts,
                    next_attempt_at=at,
                    error=error,
                )
                self._log.warning(
                    "sink %s: event %s failed (attempt %d), retry in %.1fs: %s",
                    name,
                    event.id,
                    attempts,
                    (at - now).total_seconds(),
                    error,
                )
            case Dead(attempts=attempts, error=error):
                await asyncio.to_thread(
                    self._outbox.mark_dead, item.outbox_id, attempts=attempts, error=error, now=now
                )
                self._log.error(
                    "sink %s: event %s (%s) dead after %d attempt(s): %s",
                    name,
                    event.id,
                    event.type,
                    attempts,
                    error,
                )

    async def _wait(self, secs: float, *, woken_by_new_work: bool) -> None:
        """Wait `secs` (through the injected sleep), or less if stopped or, when idle,
        woken by new work."""
        ends = [
            asyncio.ensure_future(self._sleep(secs)),
            asyncio.ensure_future(self._stopping.wait()),
        ]
        if woken_by_new_work:
            ends.append(asyncio.ensure_future(self._wake.wait()))
        try:
            await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in ends:
                task.cancel()
            await asyncio.gather(*ends, return_exceptions=True)
