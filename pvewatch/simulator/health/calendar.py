"""PVE calendar events (the `schedule` of replication and backup jobs), the common forms:
`*/15` (minutes), `21:00`, `06,18:30`, `0/2:00`, `sat 02:00`, `mon..fri 23:30`, and the
`hourly`/`daily`/`weekly` shorthands. Times are read in UTC: the simulated nodes run UTC.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SHORTHANDS = {"hourly": "*:00", "daily": "00:00", "weekly": "mon 00:00"}
_MAX_SCAN_MINUTES = 8 * 24 * 60  # every supported event repeats within a week


@dataclass(frozen=True, slots=True)
class CalendarEvent:
    spec: str
    days: frozenset[int]  # 0 = Monday, as time.gmtime counts
    hours: frozenset[int]
    minutes: frozenset[int]

    def next_after(self, after: float) -> int:
        """The first event strictly after `after` (epoch seconds)."""
        start = (int(after) // 60 + 1) * 60
        for step in range(_MAX_SCAN_MINUTES):
            at = start + step * 60
            t = time.gmtime(at)
            if t.tm_min in self.minutes and t.tm_hour in self.hours and t.tm_wday in self.days:
                return at
        raise AssertionError(f"calendar event {self.spec!r} has no time in a week")

    def last_at_or_before(self, at: float) -> int:
        """The latest event at or before `at`."""
        minute = int(at) // 60 * 60
        for step in range(_MAX_SCAN_MINUTES):
            probe = minute - step * 60
            t = time.gmtime(probe)
            if t.tm_min in self.minutes and t.tm_hour in self.hours and t.tm_wday in self.days:
                return probe
        raise AssertionError(f"calendar event {self.spec!r} has no time in a week")


def parse(spec: str) -> CalendarEvent | None:
    """The event, or None when `spec` is not one of the forms above."""
    words = _SHORTHANDS.get(spec.strip(), spec.strip()).split()
    if not words or len(words) > 2:
        return None
    days: frozenset[int] | None = frozenset(range(7))
    if len(words) == 2:
        days = _days(words[0])
    hour_part, sep, minute_part = words[-1].partition(":")
    if not sep:  # a single component is the minute
        hour_part, minute_part = "*", hour_part
    hours, minutes = _values(hour_part, 24), _values(minute_part, 60)
    if days is None or hours is None or minutes is None:
        return None
    return CalendarEvent(spec, days, hours, minutes)


def _days(word: str) -> frozenset[int] | None:
    found: set[int] = set()
    for item in word.lower().split(","):
        first, sep, last = item.partition("..")
        if first not in _DAYS or (sep and last not in _DAYS):
            return None
        a, b = _DAYS.index(first), _DAYS.index(last if sep else first)
        found.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return frozenset(found)


def _values(part: str, limit: int) -> frozenset[int] | None:
    if part == "*":
        return frozenset(range(limit))
    found: set[int] = set()
    for item in part.split(","):
        match = re.fullmatch(r"(\*|\d+)(?:/(\d+))?|(\d+)\.\.(\d+)", item)
        if match is None:
            return None
        if match.group(3) is not None:
            first, last, step = int(match.group(3)), int(match.group(4)), 1
        else:
            first = 0 if match.group(1) == "*" else int(match.group(1))
            step = int(match.group(2)) if match.group(2) else 0
            last = limit - 1 if step else first
        if last >= limit or first > last or (match.group(2) and step == 0):
            return None
        found.update(range(first, last + 1, step or 1))
    return frozenset(found)
