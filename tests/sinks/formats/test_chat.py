"""What chat messages say and how they are cut: titles, lines, "… and N more"."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvewatch.sinks.formats.chat import digest, fit_lines, one_line, truncate, utf8_len
from pvewatch.sinks.formats.teams import TeamsFormatter

from .events import FIRING, NODE_OFFLINE, RESOLVED, guest_stopped


@pytest.mark.parametrize(
    ("lines", "limit", "expected"),
    [
        (["a", "b", "c"], 100, "a\nb\nc"),
        (["aaaaaa", "bbbbbb", "cccccc"], 19, "aaaaaa\n… and 2 more"),
        (["aaaa", "bbbb"], 9, "aaaa\nbbbb"),
        (["a" * 50], 10, "aaaaaaaaa…"),
        (["a" * 50, "b"], 20, "aaaaaa…\n… and 1 more"),
        ([], 10, ""),
    ],
)
def test_fit_lines(lines: list[str], limit: int, expected: str) -> None:
    assert fit_lines(lines, limit) == expected
    assert len(fit_lines(lines, limit)) <= limit


def test_fit_lines_caps_the_number_of_lines() -> None:
    text = fit_lines([f"line {i}" for i in range(100)], 100_000, max_lines=3)
    assert text == "line 0\nline 1\nline 2\n… and 97 more"


@given(
    lines=st.lists(st.text(max_size=60), max_size=40),
    limit=st.integers(min_value=16, max_value=400),
)
def test_fit_lines_never_exceeds_its_limit(lines: list[str], limit: int) -> None:
    assert utf8_len(fit_lines(lines, limit, measure=utf8_len)) <= limit


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [("hello", 5, "hello"), ("hello!", 5, "he…"), ("ééé", 5, "é…"), ("abc", 0, "")],
)
def test_truncate_in_utf8_bytes(text: str, limit: int, expected: str) -> None:
    assert truncate(text, limit, utf8_len) == expected


def test_server_text_stays_on_one_line() -> None:
    assert one_line("web1\n⚠️ forged line\x1b[31m") == "web1 ⚠️ forged line [31m"


def test_one_event_reads_as_its_summary_and_details() -> None:
    d = digest([FIRING])
    assert d.title == "[prod] VM 100 (web1) on pve1 stopped by alice@pve"
    assert d.lines == (
        "Event: guest.stopped (warning)",
        "Resource: qemu/100 (web1) on pve1",
        "Change: status running → stopped",
        "Cause: user by alice@pve",
    )
    assert (d.emoji, d.resolved) == ("⚠️", False)


def test_a_resolution_reads_as_resolved() -> None:
    d = digest([RESOLVED])
    assert (d.emoji, d.resolved) == ("✅", True)
    assert d.lines[-1] == f"Resolves: {FIRING.id}"


def test_a_burst_across_clusters_names_each_cluster() -> None:
    other = replace(guest_stopped(200), cluster="lab")
    d = digest([guest_stopped(100), other, NODE_OFFLINE])
    assert d.title == "[prod, lab] Node pve3 offline, and 2 more: 2 guests"
    assert d.lines == (
        "🚨 [prod] Node pve3 offline",
        "⚠️ [prod] VM 100 on pve3 stopped",
        "⚠️ [lab] VM 200 on pve3 stopped",
    )


@pytest.mark.parametrize(
    ("status", "body", "meant"),
    [
        (200, b"1", 200),
        (200, b"Microsoft Teams endpoint returned HTTP error 429 with ContextId ...", 429),
        (202, b"", 202),
        (429, b"", 429),
        (500, b"429", 500),
    ],
)
def test_teams_throttling_answered_as_200_is_a_429(status: int, body: bytes, meant: int) -> None:
    assert TeamsFormatter().effective_status(status, body) == meant
