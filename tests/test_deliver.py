from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvewatch.deliver import (
    Dead,
    Delivered,
    Deliverer,
    Outbox,
    Outcome,
    Retry,
    RetryPolicy,
    decide,
)
from pvewatch.errors import SinkError, StoreError
from pvewatch.model import Event

from .sinks.contract import T0, guest_stopped

LOG = logging.getLogger("test.deliver")


# --- fakes ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Item:
    outbox_id: int
    sink: str
    event: Event
    attempts: int = 0
    next_attempt_at: datetime = T0
    state: str = "pending"
    last_error: str | None = None


class MemOutbox:
    """The store's outbox in memory, with the same semantics (thread-safe: to_thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rows: dict[int, Item] = {}
        self.calls: list[tuple[object, ...]] = []
        self.failing_reads = 0

    def add(self, sink: str, *events: Event, at: datetime = T0, attempts: int = 0) -> None:
        with self._lock:
            for event in events:
                oid = len(self.rows) + 1
                self.rows[oid] = Item(oid, sink, event, attempts, at)

    def due(self, sink: str, now: datetime, limit: int = 100) -> list[Item]:
        with self._lock:
            self.calls.append(("due", sink))
            if self.failing_reads:
                self.failing_reads -= 1
                raise StoreError("state store /x: disk I/O error")
            rows = [r for r in self.rows.values() if r.sink == sink and r.state == "pending"]
            return [r for r in rows if r.next_attempt_at <= now][:limit]

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
            return [c for c in self.calls if c[0] != "due"]


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, secs: float) -> None:
        self.now += timedelta(seconds=secs)
        await asyncio.sleep(0)


class ScriptedSink:
    """Fails as scripted (one exception per attempt, None = success), then succeeds."""

    def __init__(
        self,
        name: str,
        clock: Callable[[], datetime],
        script: dict[str, list[BaseException | None]] | None = None,
        hang: asyncio.Event | None = None,
    ) -> None:
        self.name = name
        self._clock = clock
        self._script = {k: list(v) for k, v in (script or {}).items()}
        self._hang = hang
        self.attempts: list[tuple[str, datetime]] = []
        self.delivered: list[str] = []

    async def send(self, event: Event) -> None:
        self.attempts.append((event.id, self._clock()))
        if self._hang is not None:
            await self._hang.wait()
        planned = self._script.get(event.id, [])
        failure = planned.pop(0) if planned else None
        if failure is not None:
            raise failure
        self.delivered.append(event.id)

    async def aclose(self) -> None:
        pass


def events(n: int) -> list[Event]:
    return [guest_stopped(100 + i) for i in range(n)]


def retryable(msg: str = "503 from server") -> SinkError:
    return SinkError(msg, retryable=True)


def deliverer(
    outbox: Outbox,
    sink: ScriptedSink,
    clock: FakeClock,
    *,
    policy: RetryPolicy | None = None,
    real_sleep: bool = False,
    idle_secs: float = 5.0,
    send_timeout_secs: float = 60.0,
) -> Deliverer:
    """A Deliverer on the fake clock; its waits advance the clock unless `real_sleep`."""
    return Deliverer(
        outbox,
        sink,
        policy=policy or RetryPolicy(jitter=0.0),
        clock=clock,
        rng=random.Random(1),
        logger=LOG,
        sleep=asyncio.sleep if real_sleep else clock.sleep,
        idle_secs=idle_secs,
        send_timeout_secs=send_timeout_secs,
    )


async def wait_until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.002)


@asynccontextmanager
async def running(*ds: Deliverer) -> AsyncIterator[list[asyncio.Task[None]]]:
    tasks = [asyncio.create_task(d.run()) for d in ds]
    try:
        yield tasks
    finally:
        for d in ds:
            await d.stop(grace_secs=1.0)
        await asyncio.gather(*tasks, return_exceptions=True)


# --- RetryPolicy.next_delay ----------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "attempts", "expected"),
    [
        (RetryPolicy(jitter=0), 1, 1.0),
        (RetryPolicy(jitter=0), 2, 2.0),
        (RetryPolicy(jitter=0), 3, 4.0),
        (RetryPolicy(jitter=0), 9, 256.0),
        (RetryPolicy(jitter=0), 10, 300.0),
        (RetryPolicy(jitter=0), 10_000, 300.0),
        (RetryPolicy(initial_secs=0.5, multiplier=3, max_secs=10, jitter=0), 3, 4.5),
        (RetryPolicy(initial_secs=5, multiplier=1, jitter=0), 50, 5.0),
        (RetryPolicy(initial_secs=2, max_secs=2, jitter=0.5), 1, 2.0),  # capped after jitter
    ],
)
def test_next_delay(policy: RetryPolicy, attempts: int, expected: float) -> None:
    class Top(random.Random):
        def random(self) -> float:
            return 1.0

    assert policy.next_delay(attempts, Top()) == pytest.approx(expected)


policies = st.builds(
    RetryPolicy,
    initial_secs=st.floats(0.001, 100),
    max_secs=st.floats(100, 10_000),
    multiplier=st.floats(1, 10),
    jitter=st.floats(0, 0.99),
)


@given(policies, st.integers(1, 100_000), st.integers(0, 2**32))
def test_next_delay_bounds(policy: RetryPolicy, attempts: int, seed: int) -> None:
    delay = policy.next_delay(attempts, random.Random(seed))
    base = policy.base_delay(attempts)
    assert 0 <= delay <= policy.max_secs
    assert (
        base * (1 - policy.jitter) * (1 - 1e-9) <= delay <= base * (1 + policy.jitter) * (1 + 1e-9)
    )


@given(policies, st.integers(1, 100_000))
def test_base_delay_grows_to_the_cap(policy: RetryPolicy, attempts: int) -> None:
    assert policy.initial_secs <= policy.base_delay(attempts) <= policy.max_secs
    assert policy.base_delay(attempts) <= policy.base_delay(attempts + 1)


@pytest.mark.parametrize(
    "kw",
    [
        {"initial_secs": 0},
        {"initial_secs": 10, "max_secs": 5},
        {"multiplier": 0.5},
        {"jitter": 1.0},
        {"jitter": -0.1},
        {"max_attempts": 0},
    ],
)
def test_bad_policy_is_refused(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="retry"):
        RetryPolicy(**kw)  # type: ignore[arg-type]


# --- decide ---------------------------------------------------------------------------

NOW = T0 + timedelta(seconds=60)
PLAIN = RetryPolicy(jitter=0)


@pytest.mark.parametrize(
    ("attempts_before", "error", "policy", "outcome"),
    [
        (0, None, PLAIN, Delivered()),
        (0, retryable(), PLAIN, Retry(NOW + timedelta(seconds=1), 1, "503 from server")),
        (3, retryable(), PLAIN, Retry(NOW + timedelta(seconds=8), 4, "503 from server")),
        (0, SinkError("410 gone", retryable=False), PLAIN, Dead(1, "410 gone")),
        (
            2,
            retryable(),
            RetryPolicy(jitter=0, max_attempts=3),
            Dead(3, "gave up after 3 attempts: 503 from server"),
        ),
        (
            1,
            retryable(),
            RetryPolicy(jitter=0, max_attempts=3),
            Retry(NOW + timedelta(seconds=2), 2, "503 from server"),
        ),
        (
            0,
            retryable(),
            RetryPolicy(jitter=0, max_age_secs=60),
            Dead(1, "gave up after 60s: 503 from server"),
        ),
        (
            0,
            retryable(),
            RetryPolicy(jitter=0, max_age_secs=61),
            Retry(NOW + timedelta(seconds=1), 1, "503 from server"),
        ),
        (
            0,
            SinkError("429", retryable=True, retry_after_secs=30),
            PLAIN,
            Retry(NOW + timedelta(seconds=30), 1, "429"),
        ),
        (
            0,
            SinkError("429", retryable=True, retry_after_secs=86_400),
            PLAIN,
            Retry(NOW + timedelta(seconds=300), 1, "429"),
        ),
        (
            5,
            SinkError("429", retryable=True, retry_after_secs=1),
            PLAIN,
            Retry(NOW + timedelta(seconds=32), 6, "429"),
        ),
        (0, SinkError("", retryable=False), PLAIN, Dead(1, "SinkError")),
    ],
)
def test_decide(
    attempts_before: int, error: SinkError | None, policy: RetryPolicy, outcome: Outcome
) -> None:
    item = Item(1, "s", guest_stopped(), attempts_before)
    assert decide(item, error, NOW, policy, random.Random(0)) == outcome


# --- Deliverer ------------------------------------------------------------------------


async def test_retries_keep_order_and_back_off() -> None:
    clock, outbox = FakeClock(), MemOutbox()
    e1, e2, e3 = events(3)
    outbox.add("a", e1, e2, e3)
    sink = ScriptedSink("a", clock, {e1.id: [retryable(), retryable()], e2.id: [retryable()]})
    async with running(deliverer(outbox, sink, clock)):
        await wait_until(lambda: len(sink.delivered) == 3)
    assert sink.delivered == [e1.id, e2.id, e3.id]
    s = timedelta(seconds=1)
    assert sink.attempts == [
        (e1.id, T0),
        (e1.id, T0 + 1 * s),
        (e1.id, T0 + 3 * s),
        (e2.id, T0 + 3 * s),
        (e2.id, T0 + 4 * s),
        (e3.id, T0 + 4 * s),
    ]
    assert outbox.marks() == [
        ("retry", 1, 1, T0 + 1 * s),
        ("retry", 1, 2, T0 + 3 * s),
        ("delivered", 1, T0 + 3 * s),
        ("retry", 2, 1, T0 + 4 * s),
        ("delivered", 2, T0 + 4 * s),
        ("delivered", 3, T0 + 4 * s),
    ]


async def test_dead_after_max_attempts_then_the_next_event_goes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, outbox = FakeClock(), MemOutbox()
    e1, e2 = events(2)
    outbox.add("a", e1, e2)
    sink = ScriptedSink("a", clock, {e1.id: [retryable()] * 10})
    d = deliverer(outbox, sink, clock, policy=RetryPolicy(jitter=0, max_attempts=3))
    async with running(d):
        await wait_until(lambda: sink.delivered == [e2.id])
    assert [a[0] for a in sink.attempts] == [e1.id] * 3 + [e2.id]
    assert outbox.rows[1].state == "dead"
    assert outbox.rows[1].attempts == 3
    assert outbox.rows[1].last_error == "gave up after 3 attempts: 503 from server"
    dead_logs = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any(e1.id in r.getMessage() and "dead" in r.getMessage() for r in dead_logs)


async def test_non_retryable_is_dead_at_once() -> None:
    clock, outbox = FakeClock(), MemOutbox()
    e1, e2 = events(2)
    outbox.add("a", e1, e2)
    sink = ScriptedSink("a", clock, {e1.id: [SinkError("400 bad request", retryable=False)]})
    async with running(deliverer(outbox, sink, clock)):
        await wait_until(lambda: sink.delivered == [e2.id])
    assert len(sink.attempts) == 2
    assert outbox.rows[1] == replace(
        outbox.rows[1], state="dead", attempts=1, last_error="400 bad request"
    )


async def test_unexpected_exception_is_logged_without_its_message_and_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, outbox = FakeClock(), MemOutbox()
    (e1,) = events(1)
    outbox.add("hook", e1)
    boom = KeyError("https://user:hunter2@example.invalid/")
    sink = ScriptedSink("hook", clock, {e1.id: [boom, TypeError("hunter2")]})
    async with running(deliverer(outbox, sink, clock)):
        await wait_until(lambda: sink.delivered == [e1.id])
    assert [m[0] for m in outbox.marks()] == ["retry", "retry", "delivered"]
    assert "hunter2" not in caplog.text
    assert "hunter2" not in str(outbox.calls)
    unexpected = [r.getMessage() for r in caplog.records if "unexpected" in r.getMessage()]
    assert unexpected
    assert all("hook" in m and e1.id in m for m in unexpected)


async def test_a_head_scheduled_later_still_goes_first() -> None:
    """After a restart the head may wait for its retry; the events behind it wait too."""
    clock, outbox = FakeClock(), MemOutbox()
    e1, e2 = events(2)
    outbox.add("a", e1, at=T0 + timedelta(seconds=10), attempts=1)
    outbox.add("a", e2)
    sink = ScriptedSink("a", clock)
    async with running(deliverer(outbox, sink, clock)):
        await wait_until(lambda: len(sink.delivered) == 2)
    assert sink.attempts == [
        (e1.id, T0 + timedelta(seconds=10)),
        (e2.id, T0 + timedelta(seconds=10)),
    ]


async def test_store_failures_do_not_end_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    clock, outbox = FakeClock(), MemOutbox()
    outbox.add("a", *events(1))
    outbox.failing_reads = 2
    sink = ScriptedSink("a", clock)
    async with running(deliverer(outbox, sink, clock)):
        await wait_until(lambda: len(sink.delivered) == 1)
    assert "outbox access failed: StoreError" in caplog.text


async def test_drain_delivers_everything_due() -> None:
    clock, outbox = FakeClock(), MemOutbox()
    outbox.add("a", *events(250))  # more than one batch
    sink = ScriptedSink("a", clock)
    d = deliverer(outbox, sink, clock)
    assert await d.drain(timeout_secs=10)
    assert sink.delivered == [e.id for e in events(250)]
    assert await d.drain(timeout_secs=10)  # nothing left: still True


async def test_drain_stops_at_a_failing_head() -> None:
    clock, outbox = FakeClock(), MemOutbox()
    e1, e2 = events(2)
    outbox.add("a", e1, e2)
    sink = ScriptedSink("a", clock, {e1.id: [retryable()]})
    d = deliverer(outbox, sink, clock)
    assert not await d.drain(timeout_secs=10)
    assert [a[0] for a in sink.attempts] == [e1.id]
    assert outbox.states() == {1: "pending", 2: "pending"}


async def test_drain_gives_up_at_its_timeout() -> None:
    clock, outbox = FakeClock(), MemOutbox()
    outbox.add("a", *events(1))
    sink = ScriptedSink("a", clock, hang=asyncio.Event())
    started = time.monotonic()
    assert not await deliverer(outbox, sink, clock).drain(timeout_secs=0.05)
    assert time.monotonic() - started < 2
    assert outbox.states() == {1: "pending"}


async def test_a_hanging_sink_does_not_hold_up_another() -> None:
    clock, outbox = FakeClock(), MemOutbox()
    outbox.add("slow", *events(3))
    outbox.add("fast", *events(3))
    release = asyncio.Event()
    slow = ScriptedSink("slow", clock, hang=release)
    fast = ScriptedSink("fast", clock)
    ds = [deliverer(outbox, s, clock, real_sleep=True) for s in (slow, fast)]
    async with running(*ds):
        await wait_until(lambda: len(fast.delivered) == 3)
        assert slow.delivered == []
        release.set()
        await wait_until(lambda: len(slow.delivered) == 3)


async def test_a_send_that_never_answers_times_out_and_is_retried() -> None:
    clock, outbox = FakeClock(), MemOutbox()
    outbox.add("a", *events(1))
    sink = ScriptedSink("a", clock, hang=asyncio.Event())
    d = deliverer(outbox, sink, clock, real_sleep=True, send_timeout_secs=0.05)
    async with running(d):
        await wait_until(lambda: bool(outbox.marks()))
    assert outbox.rows[1].attempts == 1
    assert outbox.rows[1].last_error == "no answer within 0.05s"


async def test_wake_ends_an_idle_wait() -> None:
    clock, outbox = FakeClock(), MemOutbox()
    sink = ScriptedSink("a", clock)
    d = deliverer(outbox, sink, clock, real_sleep=True, idle_secs=3600)
    async with running(d):
        await wait_until(lambda: bool(outbox.calls))  # it looked, found nothing, idles
        outbox.add("a", *events(1))
        d.wake()
        await wait_until(lambda: len(sink.delivered) == 1)


async def test_stop_ends_a_retry_wait() -> None:
    clock, outbox = FakeClock(), MemOutbox()
    outbox.add("a", *events(1))
    sink = ScriptedSink("a", clock, {events(1)[0].id: [retryable()]})
    d = deliverer(
        outbox, sink, clock, real_sleep=True, policy=RetryPolicy(initial_secs=3600, max_secs=3600)
    )
    task = asyncio.create_task(d.run())
    await wait_until(lambda: bool(outbox.marks()))
    d.wake()  # new work does not cut a retry wait short
    await d.stop()
    assert task.done()
    assert len(sink.attempts) == 1
    await task


async def test_stop_cancels_a_hung_send_after_the_grace() -> None:
    clock, outbox = FakeClock(), MemOutbox()
    outbox.add("a", *events(1))
    sink = ScriptedSink("a", clock, hang=asyncio.Event())
    d = deliverer(outbox, sink, clock, real_sleep=True)
    task = asyncio.create_task(d.run())
    await wait_until(lambda: bool(sink.attempts))
    await d.stop(grace_secs=0.05)
    assert task.cancelled()
    assert outbox.states() == {1: "pending"}  # sent again on the next start


async def test_stop_before_run() -> None:
    clock, outbox = FakeClock(), MemOutbox()
    d = deliverer(outbox, ScriptedSink("a", clock), clock)
    await d.stop()
    await asyncio.wait_for(d.run(), timeout=5)


async def test_with_the_sqlite_store(tmp_path: Path) -> None:
    from pvewatch.model import SourceHealth
    from pvewatch.store.sqlite import SqliteStore

    clock = FakeClock()
    store = SqliteStore(tmp_path / "state.db", clock=clock)
    e1, e2, e3 = events(3)
    store.commit_poll(
        "lab", snapshot=None, events=[e1, e2, e3], sinks=["a", "b"], health=SourceHealth()
    )
    a = ScriptedSink("a", clock, {e1.id: [retryable()], e2.id: [SinkError("no", retryable=False)]})
    b = ScriptedSink("b", clock)
    da, db = deliverer(store, a, clock), deliverer(store, b, clock)
    async with running(da, db):
        await wait_until(lambda: len(a.delivered) == 2 and len(b.delivered) == 3)
    assert a.delivered == [e1.id, e3.id]
    assert b.delivered == [e1.id, e2.id, e3.id]
    assert store.pending_count("a") == store.pending_count("b") == 0
    store.close()
