"""The delivery loop: order per resource, parallel resources, retries, dead letters, holds,
grouping, rate limits, 410, and a loop that survives whatever the sink and store do."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from pvewatch.config.types import DeliveryConfig, RetryConfig, SinkConfig
from pvewatch.deliver.deliverer import Deliverer, Outbox
from pvewatch.deliver.policy import RetryPolicy
from pvewatch.deliver.settings import Settings, settings_for
from pvewatch.errors import SinkError, SinkGone
from pvewatch.model import Event
from pvewatch.observability.observe import NullObserver
from pvewatch.sinks.base import OpenSink
from pvewatch.sinks.log import LogOptions
from pvewatch.sinks.table import SINK_TYPES
from tests.sinks.contract import T0

from .fakes import FakeClock, MemOutbox, ScriptedSink, events, on, retryable

LOG = logging.getLogger("test.deliver")
S = timedelta(seconds=1)
PLAIN = RetryPolicy(jitter=0, multiplier=2, max_secs=300)
RETRY = RetryConfig()


def deliverer(
    outbox: Outbox,
    sink: ScriptedSink,
    clock: FakeClock,
    *,
    policy: RetryPolicy = PLAIN,
    settings: Settings | None = None,
    real_sleep: bool = False,
    idle_secs: float = 5.0,
    send_timeout_secs: float = 60.0,
    **kw: object,
) -> Deliverer:
    """A Deliverer on the fake clock; its waits advance the clock unless `real_sleep`."""
    return Deliverer(
        outbox,
        sink,
        policy=policy,
        settings=settings,
        clock=clock,
        rng=random.Random(1),
        logger=LOG,
        sleep=asyncio.sleep if real_sleep else clock.sleep,
        idle_secs=idle_secs,
        send_timeout_secs=send_timeout_secs,
        **kw,  # type: ignore[arg-type]
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


# --- order and parallelism -----------------------------------------------------------


async def test_events_about_one_resource_keep_their_order_through_retries() -> None:
    clock, outbox = FakeClock(), MemOutbox()
    e1, e2, e3 = on(100, 1), on(100, 2), on(100, 3)
    outbox.add("a", e1, e2, e3)
    sink = ScriptedSink("a", clock, {e1.id: [retryable(), retryable()], e2.id: [retryable()]})
    async with running(deliverer(outbox, sink, clock)):
        await wait_until(lambda: len(sink.delivered) == 3)
    assert sink.delivered == [e1.id, e2.id, e3.id]
    assert sink.attempts == [
        (e1.id, T0),
        (e1.id, T0 + 1 * S),
        (e1.id, T0 + 3 * S),
        (e2.id, T0 + 3 * S),
        (e2.id, T0 + 4 * S),
        (e3.id, T0 + 4 * S),
    ]
    assert outbox.marks() == [
        ("retry", 1, 1, T0 + 1 * S),
        ("retry", 1, 2, T0 + 3 * S),
        ("delivered", 1, T0 + 3 * S),
        ("retry", 2, 1, T0 + 4 * S),
        ("delivered", 2, T0 + 4 * S),
        ("delivered", 3, T0 + 4 * S),
    ]


async def test_a_retrying_resource_holds_back_only_its_own_events() -> None:
    clock, outbox = FakeClock(), MemOutbox()
    a1, b1, a2, b2 = on(100, 1), on(101, 1), on(100, 2), on(101, 2)
    outbox.add("a", a1, b1, a2, b2)
    sink = ScriptedSink("a", clock, {a1.id: [retryable()] * 3})
    async with running(deliverer(outbox, sink, clock)):
        await wait_until(lambda: len(sink.delivered) == 4)
    assert sink.delivered == [b1.id, b2.id, a1.id, a2.id]


async def test_heads_waiting_for_a_retry_never_hide_a_due_one_behind_them() -> None:
    clock, outbox = FakeClock(), MemOutbox()
    outbox.add("a", *[on(100 + n) for n in range(120)], at=T0 + 100 * S, attempts=1)
    outbox.add("a", on(999))
    sink = ScriptedSink("a", clock)
    d = deliverer(outbox, sink, clock, page_size=50)
    assert not await d.drain(timeout_secs=5)  # the 120 wait for their retry
    assert sink.attempts == [("evt_999_0", T0)]


async def test_concurrency_bounds_the_sends_in_flight() -> None:
    clock, outbox = FakeClock(), MemOutbox()
    outbox.add("a", *events(10))
    release = asyncio.Event()
    sink = ScriptedSink("a", clock, hang=release)
    d = deliverer(outbox, sink, clock, real_sleep=True, settings=Settings(concurrency=3))
    async with running(d):
        await wait_until(lambda: sink.in_flight == 3)
        await asyncio.sleep(0.05)
        assert len(sink.messages) == 3
        release.set()
        await wait_until(lambda: len(sink.delivered) == 10)
    assert sink.most_in_flight == 3


async def test_one_resource_is_never_sent_twice_at_once() -> None:
    clock, outbox = FakeClock(), MemOutbox()
    outbox.add("a", *[on(100, n) for n in range(20)])
    sink = ScriptedSink("a", clock)
    d = deliverer(outbox, sink, clock, settings=Settings(concurrency=8))
    assert await d.drain(timeout_secs=10)
    assert sink.delivered == [f"evt_100_{n}" for n in range(20)]
    assert sink.most_in_flight == 1


# --- outcomes -------------------------------------------------------------------------


async def test_dead_after_max_attempts_then_the_next_event_goes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, outbox = FakeClock(), MemOutbox()
    e1, e2 = on(100, 1), on(100, 2)
    outbox.add("a", e1, e2)
    sink = ScriptedSink("a", clock, {e1.id: [retryable()] * 10})
    d = deliverer(outbox, sink, clock, policy=replace(PLAIN, max_attempts=3))
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
    e1, e2 = on(100, 1), on(100, 2)
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
    """After a restart the head may wait for its retry; its resource's next event waits."""
    clock, outbox = FakeClock(), MemOutbox()
    e1, e2 = on(100, 1), on(100, 2)
    outbox.add("a", e1, at=T0 + 10 * S, attempts=1)
    outbox.add("a", e2)
    sink = ScriptedSink("a", clock)
    async with running(deliverer(outbox, sink, clock)):
        await wait_until(lambda: len(sink.delivered) == 2)
    assert sink.attempts == [(e1.id, T0 + 10 * S), (e2.id, T0 + 10 * S)]


async def test_retry_after_holds_every_resource_of_the_sink() -> None:
    clock, outbox = FakeClock(), MemOutbox()
    a, b = on(100), on(101)
    outbox.add("a", a, b)
    throttled = SinkError("HTTP 429", retryable=True, retry_after_secs=30)
    sink = ScriptedSink("a", clock, {a.id: [throttled]})
    async with running(deliverer(outbox, sink, clock)):
        await wait_until(lambda: len(sink.delivered) == 2)
    # b is about another resource, and due: without the hold it would go at once.
    assert sink.attempts == [(a.id, T0), (a.id, T0 + 30 * S), (b.id, T0 + 30 * S)]


async def test_store_failures_do_not_end_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    clock, outbox = FakeClock(), MemOutbox()
    outbox.add("a", *events(1))
    outbox.failing_reads = 2
    sink = ScriptedSink("a", clock)
    async with running(deliverer(outbox, sink, clock)):
        await wait_until(lambda: len(sink.delivered) == 1)
    assert "outbox access failed: StoreError" in caplog.text


# --- 410 Gone -------------------------------------------------------------------------


class Enabled(NullObserver):
    def __init__(self) -> None:
        self.changes: list[tuple[str, bool]] = []

    def sink_enabled(self, sink: str, enabled: bool) -> None:
        self.changes.append((sink, enabled))


async def test_410_disables_the_sink_loudly_and_keeps_its_events(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, outbox = FakeClock(), MemOutbox()
    e1, e2 = on(100), on(101)
    outbox.add("hook", e1, e2)
    sink = ScriptedSink("hook", clock, {e1.id: [SinkGone("https://x answered HTTP 410")]})
    observer, notices = Enabled(), []

    async def on_disabled(name: str, event: Event) -> None:
        notices.append((name, event))

    d = deliverer(outbox, sink, clock, observer=observer, on_disabled=on_disabled)
    async with running(d):
        await wait_until(lambda: bool(notices))
        await asyncio.sleep(0.05)
    assert d.disabled
    assert [m[0] for m in sink.messages] == [e1.id]  # nothing more was sent
    assert outbox.states() == {1: "pending", 2: "pending"}
    assert outbox.rows[1].attempts == 1
    assert observer.changes == [("hook", False)]
    [(name, event)] = notices
    assert (name, event.type, event.details["sink"]) == ("hook", "sink.disabled", "hook")
    assert "410" in event.summary
    assert any(r.levelno == logging.ERROR and "DISABLED" in r.getMessage() for r in caplog.records)
    assert not await d.drain(timeout_secs=1)


# --- grouping and rate limits ----------------------------------------------------------


async def test_a_grouping_sink_gets_a_burst_as_one_message_after_the_group_wait() -> None:
    clock, outbox = FakeClock(), MemOutbox()
    sink = ScriptedSink("chat", clock, groups=True)
    d = deliverer(outbox, sink, clock, settings=Settings(group_wait_secs=5))
    outbox.add("chat", *events(3))
    async with running(d):
        await wait_until(lambda: len(sink.delivered) == 3)
    assert sink.messages == [[e.id for e in events(3)]]
    assert sink.attempts[0][1] == T0 + 5 * S


async def test_a_failed_burst_is_sent_again_as_the_same_message() -> None:
    clock, outbox = FakeClock(), MemOutbox()
    burst = events(3)
    sink = ScriptedSink("chat", clock, {burst[1].id: [retryable()]}, groups=True)
    outbox.add("chat", *burst)
    outbox.add("chat", on(200), at=T0 + S / 2)  # new, while the burst waits for its retry
    d = deliverer(outbox, sink, clock, settings=Settings(group_wait_secs=0))
    async with running(d):
        await wait_until(lambda: len(sink.delivered) == 4)
    ids = [e.id for e in burst]
    assert sink.messages == [ids, ["evt_200_0"], ids]
    assert [t for i, t in sink.attempts if i == burst[0].id] == [T0, T0 + S]


async def test_drain_skips_the_group_wait() -> None:
    clock, outbox = FakeClock(), MemOutbox()
    sink = ScriptedSink("chat", clock, groups=True)
    outbox.add("chat", *events(2))
    d = deliverer(outbox, sink, clock, settings=Settings(group_wait_secs=3600))
    assert await d.drain(timeout_secs=5)
    assert sink.attempts == [(e.id, T0) for e in events(2)]


async def test_max_per_minute_spaces_the_sends() -> None:
    clock, outbox = FakeClock(), MemOutbox()
    outbox.add("a", *events(5))
    sink = ScriptedSink("a", clock)
    d = deliverer(outbox, sink, clock, settings=Settings(concurrency=4, max_per_minute=2))
    assert await d.drain(timeout_secs=5)
    assert [t for _, t in sink.attempts] == [T0, T0, T0 + 60 * S, T0 + 60 * S, T0 + 120 * S]


@pytest.mark.parametrize(
    ("sink_type", "groups", "delivery", "expected"),
    [
        ("log", False, DeliveryConfig(), Settings(1, None, 0.0)),
        ("webhook", False, DeliveryConfig(), Settings(4, None, 0.0)),
        ("webhook", True, DeliveryConfig(), Settings(4, 30, 5.0)),
        ("webhook", True, DeliveryConfig(RETRY, 2, 0, 0.5), Settings(2, None, 0.5)),
        ("webhook", False, DeliveryConfig(RETRY, 1, 120, None), Settings(1, 120, 0.0)),
    ],
)
def test_settings_defaults(
    sink_type: str, groups: bool, delivery: DeliveryConfig, expected: Settings
) -> None:
    sink = ScriptedSink("s", FakeClock(), groups=groups)
    cfg = SinkConfig("s", sink_type, LogOptions(), delivery=delivery)
    opened = OpenSink(cfg, sink, SINK_TYPES[sink_type].concurrency)
    assert settings_for(opened) == expected


# --- drain, stop, wake -----------------------------------------------------------------


async def test_drain_delivers_everything_due() -> None:
    clock, outbox = FakeClock(), MemOutbox()
    backlog = [on(100 + n % 7, n) for n in range(250)]  # more than the lookahead
    outbox.add("a", *backlog)
    sink = ScriptedSink("a", clock)
    d = deliverer(outbox, sink, clock, settings=Settings(concurrency=4))
    assert await d.drain(timeout_secs=10)
    assert sorted(sink.delivered) == sorted(e.id for e in backlog)
    for vm in range(100, 107):
        mine = [i for i in sink.delivered if i.startswith(f"evt_{vm}_")]
        assert mine == [e.id for e in backlog if e.id.startswith(f"evt_{vm}_")]
    assert await d.drain(timeout_secs=10)  # nothing left: still True


async def test_drain_stops_at_a_failing_head_but_sends_other_resources() -> None:
    clock, outbox = FakeClock(), MemOutbox()
    a1, a2, b1 = on(100, 1), on(100, 2), on(101, 1)
    outbox.add("a", a1, a2, b1)
    sink = ScriptedSink("a", clock, {a1.id: [retryable()]})
    d = deliverer(outbox, sink, clock)
    assert not await d.drain(timeout_secs=10)
    assert [a[0] for a in sink.attempts] == [a1.id, b1.id]
    assert outbox.states() == {1: "pending", 2: "pending", 3: "delivered"}


async def test_drain_gives_up_at_its_timeout() -> None:
    clock, outbox = FakeClock(), MemOutbox()
    outbox.add("a", *events(1))
    sink = ScriptedSink("a", clock, hang=asyncio.Event())
    d = deliverer(outbox, sink, clock)
    started = time.monotonic()
    assert not await d.drain(timeout_secs=0.05)
    assert time.monotonic() - started < 10  # not the hung send's forever; generous under load
    await d.stop(grace_secs=0.01)
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
    policy = RetryPolicy(initial_secs=3600, max_secs=3600)
    d = deliverer(outbox, sink, clock, real_sleep=True, policy=policy)
    task = asyncio.create_task(d.run())
    await wait_until(lambda: bool(outbox.marks()))
    d.wake()  # new work does not cut a retry wait short
    await asyncio.sleep(0.05)
    await d.stop()
    assert task.done()
    assert len(sink.attempts) == 1
    await task


async def test_stop_cancels_a_hung_send_after_the_grace(caplog: pytest.LogCaptureFixture) -> None:
    clock, outbox = FakeClock(), MemOutbox()
    outbox.add("a", *events(1))
    sink = ScriptedSink("a", clock, hang=asyncio.Event())
    d = deliverer(outbox, sink, clock, real_sleep=True)
    task = asyncio.create_task(d.run())
    await wait_until(lambda: bool(sink.attempts))
    await d.stop(grace_secs=0.05)
    assert task.done()
    assert outbox.states() == {1: "pending"}  # sent again on the next start
    assert "cancelling a send" in caplog.text


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
    e1, e2, e3 = on(100, 1), on(100, 2), on(101, 3)
    store.commit_poll(
        "lab", snapshot=None, events=[e1, e2, e3], sinks=["a", "b"], health=SourceHealth()
    )
    a = ScriptedSink("a", clock, {e1.id: [retryable()], e2.id: [SinkError("no", retryable=False)]})
    b = ScriptedSink("b", clock)
    settings = Settings(concurrency=4)
    da, db = (deliverer(store, s, clock, settings=settings) for s in (a, b))
    async with running(da, db):
        await wait_until(lambda: store.pending_count("a") == store.pending_count("b") == 0)
    assert a.delivered == [e3.id, e1.id]  # e3 is about another VM: it did not wait for e1
    assert sorted(b.delivered) == sorted([e1.id, e2.id, e3.id])
    assert b.delivered.index(e1.id) < b.delivered.index(e2.id)
    assert [d.event.id for d in store.deliveries(sink="a", state="dead")] == [e2.id]
    store.close()
