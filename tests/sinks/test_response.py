"""What a receiver's answer means: status classes and Retry-After (tables and hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvewatch.errors import SinkError, SinkGone
from pvewatch.sinks.response import answer_error, parse_retry_after

NOW = datetime(2026, 11, 28, 1, 2, 3, tzinfo=UTC)
WHERE = "https://hooks.example"


@pytest.mark.parametrize(
    ("value", "secs"),
    [
        (None, None),
        ("0", 0.0),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("Sat, 28 Nov 2026 01:03:03 GMT", 60.0),  # IMF-fixdate
        ("Saturday, 28-Nov-26 01:03:03 GMT", 60.0),  # RFC 850
        ("Sat Nov 28 01:03:03 2026", 60.0),  # asctime
        ("Sat, 28 Nov 2026 01:00:00 GMT", 0.0),  # in the past
        ("Sat, 28 Nov 2026 02:03:03 +0100", 60.0),  # 01:03:03 UTC
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        ("\u0663", None),  # an Arabic-Indic digit, not ASCII
        ("99999999999999999999", 7 * 24 * 3600.0),  # capped at a week
    ],
)
def test_parse_retry_after(value: str | None, secs: float | None) -> None:
    assert parse_retry_after(value, NOW) == secs


@given(st.text(max_size=60))
def test_retry_after_never_raises_and_is_never_negative(value: str) -> None:
    secs = parse_retry_after(value, NOW)
    assert secs is None or 0 <= secs <= 7 * 24 * 3600


@given(st.integers(0, 10**6))
def test_retry_after_seconds_round_trip(n: int) -> None:
    assert parse_retry_after(str(n), NOW) == min(float(n), 7 * 24 * 3600)


@given(st.integers(-(10**6), 10**6))
def test_retry_after_dates_round_trip(offset: int) -> None:
    when = NOW + timedelta(seconds=offset)
    expected = min(max(offset, 0), 7 * 24 * 3600)
    assert parse_retry_after(format_datetime(when, usegmt=True), NOW) == expected


def _kind(error: SinkError | None) -> str:
    if error is None:
        return "delivered"
    if isinstance(error, SinkGone):
        return "gone"
    return "retry" if error.retryable else "dead"


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, "delivered"),
        (202, "delivered"),
        (204, "delivered"),
        (299, "delivered"),
        (301, "dead"),
        (302, "dead"),
        (307, "dead"),
        (308, "dead"),
        (400, "dead"),
        (401, "dead"),
        (403, "dead"),
        (404, "dead"),
        (408, "retry"),
        (409, "retry"),
        (410, "gone"),
        (413, "dead"),
        (422, "dead"),
        (425, "retry"),
        (429, "retry"),
        (500, "retry"),
        (502, "retry"),
        (503, "retry"),
        (504, "retry"),
        (599, "retry"),
        (100, "retry"),  # not a final answer: try again
    ],
)
def test_status_classes(status: int, kind: str) -> None:
    assert _kind(answer_error(status, None, NOW, WHERE)) == kind


@pytest.mark.parametrize(("status", "honoured"), [(429, True), (503, True), (500, False)])
def test_retry_after_is_honoured_on_429_and_503(status: int, honoured: bool) -> None:
    error = answer_error(status, "30", NOW, WHERE)
    assert error is not None
    assert error.retry_after_secs == (30.0 if honoured else None)


def test_errors_name_the_receiver_and_the_status() -> None:
    error = answer_error(302, None, NOW, WHERE)
    assert str(error).startswith("https://hooks.example answered HTTP 302")
    assert "redirect" in str(error)
