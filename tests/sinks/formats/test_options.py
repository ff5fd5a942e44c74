"""The options of the webhook formats: what they read, and the problems with key paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from pvewatch.config.reading import Ctx
from pvewatch.sinks.formats.options import format_options


def read_formats(tmp_path: Path, m: dict[str, object]) -> tuple[dict[str, object], list[str]]:
    """The options read, as check-config shows them, and the problems found."""
    ctx = Ctx(tmp_path, None)
    return format_options(ctx, "sinks.hook", m).summary(), ctx.problems


@pytest.mark.parametrize(
    ("m", "options"),
    [
        ({}, {"format": "native"}),
        ({"format": "slack"}, {"format": "slack"}),
        ({"format": "ntfy"}, {"format": "ntfy", "topic": None}),
        ({"format": "ntfy", "topic": "alerts"}, {"format": "ntfy", "topic": "alerts"}),
        ({"format": "alertmanager"}, {"format": "alertmanager", "external_url": ""}),
        (
            {"format": "template", "template": "{{ event.id }}"},
            {"format": "template", "template": "{{ event.id }}",
             "content_type": "application/json", "group": False},
        ),
        (
            {"format": "template", "template": "x", "content_type": "text/plain", "group": True},
            {"format": "template", "template": "x", "content_type": "text/plain", "group": True},
        ),
    ],
)  # fmt: skip
def test_format_options_come_out_complete(
    tmp_path: Path, m: dict[str, object], options: dict[str, object]
) -> None:
    assert read_formats(tmp_path, m) == (options, [])


def test_template_file_is_read_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "body.j2").write_text("{{ event.summary }}\n", encoding="utf-8")
    options, found = read_formats(tmp_path, {"format": "template", "template_file": "body.j2"})
    assert (options["template"], found) == ("{{ event.summary }}\n", [])


FORMAT_PROBLEMS: list[tuple[str, dict[str, object], str]] = [
    (
        "unknown format",
        {"format": "pagerduty"},
        "sinks.hook.format: expected one of native, alertmanager",
    ),
    (
        "option of another format",
        {"format": "slack", "topic": "x"},
        "sinks.hook.topic: only for format: ntfy",
    ),
    (
        "template missing",
        {"format": "template"},
        "sinks.hook.template: required with format: template (or template_file)",
    ),
    (
        "template and file",
        {"format": "template", "template": "x", "template_file": "y"},
        "sinks.hook: set template or template_file, not both",
    ),
    (
        "template syntax",
        {"format": "template", "template": "a\n{{ event.id }\n"},
        "sinks.hook.template: line 2: unexpected '}'",
    ),
    (
        "template typo",
        {"format": "template", "template": "{{ event.sumary }}"},
        "sinks.hook.template: does not render a sample event: UndefinedError",
    ),
    (
        "template file missing",
        {"format": "template", "template_file": "nope.j2"},
        "sinks.hook.template_file: cannot read ",
    ),
    (
        "content type empty",
        {"format": "template", "template": "x", "content_type": " "},
        "sinks.hook.content_type: must not be empty",
    ),
    (
        "group not a boolean",
        {"format": "template", "template": "x", "group": "yes"},
        "sinks.hook.group: expected true or false, got a string",
    ),
]


@pytest.mark.parametrize(
    ("m", "expected"), [c[1:] for c in FORMAT_PROBLEMS], ids=[c[0] for c in FORMAT_PROBLEMS]
)
def test_format_problem_names_its_key_path(
    tmp_path: Path, m: dict[str, object], expected: str
) -> None:
    _, found = read_formats(tmp_path, m)
    assert any(p.startswith(expected) for p in found), found


def test_template_file_syntax_error_names_the_file_key_and_line(tmp_path: Path) -> None:
    (tmp_path / "body.j2").write_text("ok\nok\n{% for %}\n", encoding="utf-8")
    _, found = read_formats(tmp_path, {"format": "template", "template_file": "body.j2"})
    assert found == [
        "sinks.hook.template_file: line 3: Expected an expression, got 'end of statement block'"
    ]
