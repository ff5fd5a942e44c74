"""What to send now: which due rows go together in one message, and the rate limit. Pure:
the time is an argument.

Rows wait in lines, one line per resource of a cluster; only the head of a line is ever
offered here, so events about one resource are sent in the order they happened, while
other resources go on in parallel.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from pvewatch.deliver.policy import PendingItem

Item = TypeVar("Item", bound=PendingItem)

# A grouped message carries at most this many events (formats split further by size).
MAX_GROUP = 50
_WINDOW = timedelta(minutes=1)


def plan_messages(due: Sequence[Item], *, grouped: bool) -> list[list[Item]]:
    """The messages to send for `due` line heads (in outbox order): one per row, or for
    a grouping sink one per batch of rows that failed together (same attempts and retry
    time, so a retried burst is sent again as the same message) and one for the new
    rows, oldest batch first."""
    if not grouped:
        return [[item] for item in due]
    batches: dict[tuple[int, datetime | None], list[Item]] = {}
    for item in due:
        key = (item.attempts, item.next_attempt_at if item.attempts else None)
        batches.setdefault(key, []).append(item)
    return [
        batch[i : i + MAX_GROUP]
        for batch in batches.values()
        for i in range(0, len(batch), MAX_GROUP)
    ]


def is_new(message: Sequence[PendingItem]) -> bool:
    """A message of rows never tried yet (the ones a group wait applies to)."""
    return all(item.attempts == 0 for item in message)


class RateLimit:
    """At most `per_minute` sends in any 60 s window (None: no limit)."""

    def __init__(self, per_minute: int | None) -> None:
        if per_minute is not None and per_minute < 1:
            raise ValueError("max_per_minute must be >= 1")
        self._per_minute = per_minute
        self._sent: deque[datetime] = deque()

    def wait(self, now: datetime) -> float:
        """Seconds until the next send is allowed; 0 = now."""
        if self._per_minute is None:
            return 0.0
        while self._sent and self._sent[0] <= now - _WINDOW:
            self._sent.popleft()
        if len(self._sent) < self._per_minute:
            return 0.0
        return max((self._sent[0] + _WINDOW - now).total_seconds(), 0.0)

    def note(self, now: datetime) -> None:
        """A send started at `now`."""
        if self._per_minute is not None:
            self._sent.append(now)
