"""The event reference (docs/events.md) and the code's catalogue must tell the same story."""

from __future__ import annotations

import re
from pathlib import Path

from pvewatch.model import EVENT_TYPES

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EVENTS = ROOT / "docs" / "events.md"


def _reference_rows() -> dict[str, str]:
    text = EVENTS.read_text()
    section = text.split("\n## Event reference\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_.]+)` \| (\w+) \|", section, flags=re.MULTILINE)
    names = [name for name, _ in rows]
    assert len(names) == len(set(names)), "an event type is listed twice"
    return dict(rows)


def test_the_event_reference_lists_every_event_type_with_its_severity() -> None:
    documented = _reference_rows()
    expected = {name: t.severity.value for name, t in EVENT_TYPES.items()}
    assert documented == expected


def test_readme_quick_start_commands() -> None:
    text = README.read_text()
    assert "make demo" in text
    assert "make test" in text
