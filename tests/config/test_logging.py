"""The log section: level and format of pvewatch's own log."""

from __future__ import annotations

from pathlib import Path

import pytest

from pvewatch.config.logging import LogConfig

from .support import assert_reported, base, load


def test_defaults_without_a_log_section(tmp_path: Path) -> None:
    assert load(tmp_path, base()).log == LogConfig("info", "text")


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"level": "debug"}, LogConfig("debug", "text")),
        ({"level": "WARNING", "format": "json"}, LogConfig("warning", "json")),
        ({"format": "json"}, LogConfig("info", "json")),
        ({}, LogConfig()),
    ],
)
def test_log_section(tmp_path: Path, section: dict[str, str], expected: LogConfig) -> None:
    assert load(tmp_path, {**base(), "log": section}).log == expected


def test_level_from_the_environment(tmp_path: Path) -> None:
    doc = {**base(), "log": {"level": "${LOG_LEVEL:-info}"}}
    assert load(tmp_path, doc, {"LOG_LEVEL": "error"}).log.level == "error"


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"level": "loud"}, "log.level: expected one of info, debug, warning, error"),
        ({"format": "xml"}, "log.format: expected one of text, json"),
        ({"fromat": "json"}, "log.fromat: unknown key (did you mean format?)"),
        ("json", "log: expected a mapping"),
    ],
)
def test_log_problems_name_their_key(tmp_path: Path, section: object, expected: str) -> None:
    assert_reported(tmp_path, {**base(), "log": section}, expected)
