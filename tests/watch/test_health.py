"""Poll failures are not changes: one source.unreachable per outage, one source.recovered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvewatch.model import SourceHealth
from pvewatch.watch.health import poll_failed, poll_succeeded

NOW = datetime(2026, 11, 28, 1, 2, 3, tzinfo=UTC)


def _run(outcomes: str, threshold: int) -> list[str]:
    """Feed a sequence of poll outcomes (F = failed, S = succeeded); return event types."""
    health = SourceHealth()
    types: list[str] = []
    for i, outcome in enumerate(outcomes):
        now = NOW + timedelta(seconds=10 * i)
        if outcome == "F":
            health, events = poll_failed(health, "lab", "unreachable", threshold, now)
        else:
            health, events = poll_succeeded(health, "lab", now)
        types += [e.type for e in events]
    return types


@pytest.mark.parametrize(
    ("outcomes", "threshold", "expected"),
    [
        ("SSSS", 3, []),
        ("FFS", 3, []),  # a blip below the threshold says nothing
        ("FFF", 3, ["source.unreachable"]),
        ("FFFFFFFF", 3, ["source.unreachable"]),  # once per outage, not once per poll
        ("FFFS", 3, ["source.unreachable", "source.recovered"]),
        ("FFFSS", 3, ["source.unreachable", "source.recovered"]),
        ("FSFSFS", 2, []),  # the count restarts after every good poll
        ("F", 1, ["source.unreachable"]),
        ("FFSFF", 2, ["source.unreachable", "source.recovered", "source.unreachable"]),
    ],
)
def test_outage_sequences(outcomes: str, threshold: int, expected: list[str]) -> None:
    assert _run(outcomes, threshold) == expected


def test_unreachable_event_carries_the_error_class_and_count() -> None:
    health = SourceHealth(consecutive_failures=2)
    health, (event,) = poll_failed(health, "lab", "auth", 3, NOW)
    assert health == SourceHealth(3, True, "auth")
    assert event.type == "source.unreachable"
    assert event.severity.value == "critical"
    assert event.cluster == "lab"
    assert event.resource is None
    assert event.details == {"error": "auth", "failures": 3}
    assert "lab" in event.summary
    assert "auth" in event.summary
    assert event.to_dict()["details"] == {"error": "auth", "failures": 3}


def test_recovered_after_restart_uses_the_stored_health() -> None:
    stored = SourceHealth(consecutive_failures=7, unreachable=True, last_error="bad_response")
    health, (event,) = poll_succeeded(stored, "lab", NOW)
    assert health == SourceHealth()
    assert event.type == "source.recovered"
    assert event.details == {"failures": 7, "error": "bad_response"}


def test_event_ids_are_deterministic_and_differ_per_outage() -> None:
    a = poll_failed(SourceHealth(2), "lab", "unreachable", 3, NOW)[1][0]
    b = poll_failed(SourceHealth(2), "lab", "unreachable", 3, NOW)[1][0]
    c = poll_failed(SourceHealth(2), "lab", "unreachable", 3, NOW + timedelta(hours=1))[1][0]
    assert a.id == b.id
    assert a.id != c.id


@given(st.text(alphabet="FS", max_size=60), st.integers(min_value=1, max_value=5))
def test_events_alternate_and_follow_the_threshold(outcomes: str, threshold: int) -> None:
    types = _run(outcomes, threshold)
    # Strictly alternating, starting with unreachable: never two of a kind in a row.
    assert types == ["source.unreachable", "source.recovered"] * (len(types) // 2) + (
        ["source.unreachable"] if len(types) % 2 else []
    )
    # An unreachable event needs a run of at least `threshold` failures.
    longest_run = max((len(r) for r in outcomes.split("S")), default=0)
    assert bool(types) == (longest_run >= threshold)
