"""When to try a delivery again, and when to give up. Pure: the time and the random source
are arguments.

The default schedule follows the Standard Webhooks one (5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
...) with quicker first retries: about 1 s, 5 s, 25 s, 2 min, 10 min, 52 min, then every
hour, for 24 hours after the event was queued; each delay is jittered by ±20 %.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from pvewatch.config.types import RetryConfig
from pvewatch.config.values import retry_problems
from pvewatch.errors import SinkError
from pvewatch.model import Event

_DEFAULT = RetryConfig()


class PendingItem(Protocol):
    """The fields of an outbox row that delivery reads (`pvewatch.store.base.OutboxItem`)."""

    @property
    def outbox_id(self) -> int: ...
    @property
    def event(self) -> Event: ...
    @property
    def attempts(self) -> int: ...
    @property
    def next_attempt_at(self) -> datetime: ...
    @property
    def queued_at(self) -> datetime: ...
    @property
    def line(self) -> tuple[str, str | None]: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    initial_secs: float = _DEFAULT.initial_secs
    max_secs: float = _DEFAULT.max_secs
    multiplier: float = 5.0
    jitter: float = 0.2  # each delay is scaled by a random factor in [1 - jitter, 1 + jitter]
    max_attempts: int | None = _DEFAULT.max_attempts
    max_age_secs: float | None = _DEFAULT.max_age_secs  # from when the row was queued

    def __post_init__(self) -> None:
        # The ranges of the config's `retry:` (one rule, pvewatch.config.values), and the
        # two knobs only code sets.
        problems = retry_problems(
            self.initial_secs, self.max_secs, self.max_attempts, self.max_age_secs
        )
        if self.multiplier < 1:
            problems.append("multiplier: must be >= 1")
        if not 0 <= self.jitter < 1:
            problems.append("jitter: must be in [0, 1)")
        if problems:
            raise ValueError(f"retry: {'; '.join(problems)}")

    @classmethod
    def from_config(cls, cfg: RetryConfig) -> RetryPolicy:
        return cls(
            initial_secs=cfg.initial_secs,
            max_secs=cfg.max_secs,
            max_attempts=cfg.max_attempts,
            max_age_secs=cfg.max_age_secs,
        )

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
    age = (now - item.queued_at).total_seconds()
    if policy.max_age_secs is not None and age >= policy.max_age_secs:
        return Dead(attempts, f"gave up after {age:.0f}s: {message}")
    delay = policy.next_delay(attempts, rng)
    if error.retry_after_secs is not None and math.isfinite(error.retry_after_secs):
        # The server knows best when it will take requests again, even past max_secs
        # (response.py caps what it believes at a week).
        delay = max(delay, error.retry_after_secs)
    return Retry(now + timedelta(seconds=delay), attempts, message)


def decide_message(
    items: Sequence[PendingItem],
    error: SinkError | None,
    now: datetime,
    policy: RetryPolicy,
    rng: random.Random,
) -> list[Outcome]:
    """The outcome of each row of one message (a grouped message carries several). The
    rows to retry share the latest of their times, so the same message goes again."""
    outcomes = [decide(item, error, now, policy, rng) for item in items]
    times = [o.at for o in outcomes if isinstance(o, Retry)]
    if len(times) < 2:
        return outcomes
    at = max(times)
    return [replace(o, at=at) if isinstance(o, Retry) else o for o in outcomes]
