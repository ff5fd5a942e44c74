"""pvewatch.model: times in events are RFC 3339, whatever the year."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvewatch.model import format_time

RFC3339 = jsonschema.FormatChecker()  # date-time: rfc3339-validator, a dev dependency
assert "date-time" in RFC3339.checkers


@pytest.mark.parametrize(
    ("t", "text"),
    [
        (datetime(2026, 11, 28, 1, 2, 3, tzinfo=UTC), "2026-11-28T01:02:03Z"),
        (datetime(2026, 11, 28, 1, 2, 3, 123456, tzinfo=UTC), "2026-11-28T01:02:03.123Z"),
        (datetime(2026, 11, 28, 1, 2, 3, 500, tzinfo=UTC), "2026-11-28T01:02:03.000Z"),
        (datetime(2026, 11, 28, 3, 2, 3, tzinfo=timezone(timedelta(hours=2))),
         "2026-11-28T01:02:03Z"),
        (datetime(999, 1, 1, tzinfo=UTC), "0999-01-01T00:00:00Z"),  # strftime gave 999-...
    ],
)  # fmt: skip
def test_format_time(t: datetime, text: str) -> None:
    assert format_time(t) == text


@given(st.datetimes(timezones=st.just(UTC)))
def test_format_time_is_rfc3339_and_reads_back(t: datetime) -> None:
    text = format_time(t)
    assert RFC3339.conforms(text, "date-time"), text
    assert abs(datetime.fromisoformat(text) - t) < timedelta(milliseconds=1)
