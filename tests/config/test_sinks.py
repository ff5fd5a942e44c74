"""The sinks section: the common keys, the type that picks a row of the sink table, and
the options each row reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from pvewatch.config.reading import Ctx
from pvewatch.sinks.table import SINK_TYPES

from .support import assert_reported, base, load, problems

SINK_PROBLEMS: list[tuple[str, object, str]] = [
    ("sink format", {**base(), "sinks": {"console": {"type": "log", "format": "xml"}}},
     'sinks.console.format: expected one of text, json, got "xml"'),
    ("sink fsync", {**base(), "sinks": {"console": {"type": "log", "fsync": "yes"}}},
     "sinks.console.fsync: expected true or false, got a string"),
    ("sink no type", {**base(), "sinks": {"console": {"format": "json"}}},
     "sinks.console.type: required (one of alertmanager, email, log, "),
    ("sink unknown type", {**base(), "sinks": {"hook": {"type": "carrier-pigeon"}}},
     'sinks.hook.type: expected one of alertmanager, email, log, '),
    ("sink name", {**base(), "sinks": {"Console": {"type": "log"}}}, "sinks.Console: sink names"),
    ("sink option typo", {**base(), "sinks": {"console": {"type": "log", "fromat": "json"}}},
     "sinks.console.fromat: unknown key (did you mean format?)"),
    ("sinks a list", {**base(), "sinks": [{"type": "log"}]},
     "sinks: expected a mapping, got a list"),
    ("sink path empty", {**base(), "sinks": {"f": {"type": "log", "path": ""}}},
     'sinks.f.path: must not be empty (use "-" for stdout)'),
    ("sink path a number", {**base(), "sinks": {"f": {"type": "log", "path": 5}}},
     "sinks.f.path: expected a string, got an integer"),
    ("sink format a list", {**base(), "sinks": {"f": {"type": "log", "format": ["json"]}}},
     "sinks.f.format: expected a string, got a list"),
    ("sink fsync a number", {**base(), "sinks": {"f": {"type": "log", "fsync": 1}}},
     "sinks.f.fsync: expected true or false, got an integer"),
    ("sink a string", {**base(), "sinks": {"f": "log"}},
     "sinks.f: expected a mapping with a type, got a string"),
    ("sink type a number", {**base(), "sinks": {"f": {"type": 1}}},
     "sinks.f.type: expected a string, got an integer"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("doc", "expected"), [c[1:] for c in SINK_PROBLEMS], ids=[c[0] for c in SINK_PROBLEMS]
)
def test_sink_problem_names_its_key_path(tmp_path: Path, doc: object, expected: str) -> None:
    assert_reported(tmp_path, doc, expected)


def test_every_problem_of_a_sink_is_reported_at_once(tmp_path: Path) -> None:
    doc = {**base(), "sinks": {"ev": {"type": "log", "format": "xml", "path": "", "fsync": "yes"}}}
    doc["sinks"]["ev"]["colour"] = 1
    assert sorted(problems(tmp_path, doc)) == [
        "sinks.ev.colour: unknown key",
        'sinks.ev.format: expected one of text, json, got "xml"',
        "sinks.ev.fsync: expected true or false, got a string",
        'sinks.ev.path: must not be empty (use "-" for stdout)',
    ]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, {"format": "text", "path": "-", "fsync": False}),
        ({"path": "-", "format": "json"}, {"format": "json", "path": "-", "fsync": False}),
        ({"path": "/var/log/ev.log", "fsync": True}, {"path": "/var/log/ev.log", "fsync": True}),
        ({"path": "ev.log"}, {"path": "{dir}/ev.log"}),
    ],
)
def test_log_options_come_out_complete(
    tmp_path: Path, options: dict[str, object], expected: dict[str, object]
) -> None:
    # The sink reads these without checking: every option is present, paths are absolute.
    doc = {**base(), "sinks": {"ev": {"type": "log", **options}}}
    (sink,) = load(tmp_path, doc).sinks
    assert (sink.name, sink.type) == ("ev", "log")
    options = sink.options.summary()
    assert set(options) == {"format", "path", "fsync"}
    for key, value in expected.items():
        want = value.format(dir=tmp_path) if isinstance(value, str) else value
        assert options[key] == want, key


def test_no_sinks_means_a_text_log_on_stdout(tmp_path: Path) -> None:
    for doc in [base(), {**base(), "sinks": {}}, {**base(), "sinks": None}]:
        sinks = load(tmp_path, doc).sinks
        assert [(s.name, s.type, s.options.summary()) for s in sinks] == [
            ("console", "log", {"format": "text", "path": "-", "fsync": False})
        ]


@pytest.mark.parametrize("sink_type", sorted(SINK_TYPES))
def test_each_type_returns_only_its_declared_options(tmp_path: Path, sink_type: str) -> None:
    row = SINK_TYPES[sink_type]
    options = row.parse(Ctx(tmp_path, None), f"sinks.{sink_type}", {})
    assert isinstance(options, row.options)
    assert set(options.summary()) <= row.keys
