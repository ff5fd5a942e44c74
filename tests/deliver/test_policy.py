"""RetryPolicy and decide: when to retry, and when to give up (tables and hypothesis)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvewatch.config.types import RetryConfig
from pvewatch.deliver.policy import (
    Dead,
    Delivered,
    Outcome,
    Retry,
    RetryPolicy,
    decide,
    decide_message,
)
from pvewatch.errors import SinkError
from tests.sinks.contract import T0

from .fakes import Item, events, retryable


class Top(random.Random):
    def random(self) -> float:
        return 1.0


def test_the_default_schedule_starts_quick_and_slows_to_hourly_for_a_day() -> None:
    policy = RetryPolicy(jitter=0)
    delays = [policy.next_delay(n, Top()) for n in range(1, 10)]
    assert delays == [1, 5, 25, 125, 625, 3125, 3600, 3600, 3600]
    assert (policy.max_attempts, policy.max_age_secs) == (None, 86400)
    assert RetryPolicy.from_config(RetryConfig()) == RetryPolicy()


@pytest.mark.parametrize(
    ("policy", "attempts", "expected"),
    [
        (RetryPolicy(jitter=0, multiplier=2, max_secs=300), 1, 1.0),
        (RetryPolicy(jitter=0, multiplier=2, max_secs=300), 3, 4.0),
        (RetryPolicy(jitter=0, multiplier=2, max_secs=300), 10, 300.0),
        (RetryPolicy(jitter=0), 10_000, 3600.0),
        (RetryPolicy(initial_secs=0.5, multiplier=3, max_secs=10, jitter=0), 3, 4.5),
        (RetryPolicy(initial_secs=5, multiplier=1, jitter=0), 50, 5.0),
        (RetryPolicy(initial_secs=2, max_secs=2, jitter=0.5), 1, 2.0),  # capped after jitter
    ],
)
def test_next_delay(policy: RetryPolicy, attempts: int, expected: float) -> None:
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


NOW = T0 + timedelta(seconds=60)
PLAIN = RetryPolicy(jitter=0, multiplier=2, max_secs=300)
S = timedelta(seconds=1)
MSG = "503 from server"


def throttled(secs: float) -> SinkError:
    return SinkError("429", retryable=True, retry_after_secs=secs)


@pytest.mark.parametrize(
    ("attempts_before", "error", "policy", "outcome"),
    [
        (0, None, PLAIN, Delivered()),
        (0, retryable(), PLAIN, Retry(NOW + 1 * S, 1, "503 from server")),
        (3, retryable(), PLAIN, Retry(NOW + 8 * S, 4, "503 from server")),
        (0, SinkError("410 gone", retryable=False), PLAIN, Dead(1, "410 gone")),
        (
            2,
            retryable(),
            RetryPolicy(jitter=0, max_attempts=3),
            Dead(3, "gave up after 3 attempts: 503 from server"),
        ),
        (1, retryable(), RetryPolicy(jitter=0, max_attempts=3), Retry(NOW + 5 * S, 2, MSG)),
        (
            0,
            retryable(),
            RetryPolicy(jitter=0, max_age_secs=60),
            Dead(1, "gave up after 60s: 503 from server"),
        ),
        (0, retryable(), RetryPolicy(jitter=0, max_age_secs=61), Retry(NOW + S, 1, MSG)),
        (0, throttled(30), PLAIN, Retry(NOW + 30 * S, 1, "429")),
        (
            0,
            throttled(86_400),  # past max_secs: the server knows best
            PLAIN,
            Retry(NOW + 86_400 * S, 1, "429"),
        ),
        (5, throttled(1), PLAIN, Retry(NOW + 32 * S, 6, "429")),
        (0, SinkError("", retryable=False), PLAIN, Dead(1, "SinkError")),
    ],
)  # fmt: skip
def test_decide(
    attempts_before: int, error: SinkError | None, policy: RetryPolicy, outcome: Outcome
) -> None:
    item = Item(1, "s", events(1)[0], attempts_before)
    assert decide(item, error, NOW, policy, random.Random(0)) == outcome


def test_max_age_counts_from_when_the_row_was_queued_not_from_the_event() -> None:
    # A replayed old event gets its full retry budget again.
    item = Item(1, "s", events(1)[0], queued_at=NOW)
    later = NOW + timedelta(seconds=59)
    outcome = decide(item, retryable(), later, RetryPolicy(max_age_secs=60), random.Random(0))
    assert isinstance(outcome, Retry)


def test_the_rows_of_a_failed_message_retry_together() -> None:
    e1, e2, e3 = events(3)
    message = [Item(1, "s", e1), Item(2, "s", e2, attempts=4), Item(3, "s", e3)]
    outcomes = decide_message(message, retryable(), NOW, PLAIN, random.Random(0))
    assert outcomes == [
        Retry(NOW + 16 * S, 1, "503 from server"),
        Retry(NOW + 16 * S, 5, "503 from server"),
        Retry(NOW + 16 * S, 1, "503 from server"),
    ]
    gone = decide_message(message, retryable(), NOW, RetryPolicy(max_attempts=5), random.Random(0))
    assert isinstance(gone[1], Dead)
    assert decide_message(message, None, NOW, PLAIN, random.Random(0)) == [Delivered()] * 3
