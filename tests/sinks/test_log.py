from __future__ import annotations

import io
import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from pvewatch.config.load import load_config
from pvewatch.config.types import SinkConfig
from pvewatch.errors import ConfigError, SinkError
from pvewatch.model import Cause, Event
from pvewatch.sinks.base import Sink, SinkContext, sink_type
from pvewatch.sinks.log import LogOptions, LogSink, format_json, format_text
from pvewatch.sinks.table import SINK_TYPES

from .contract import awkward_events, check_sink_contract, guest_stopped


@pytest.mark.parametrize(
    ("event", "line"),
    [
        (
            replace(guest_stopped(), cause=None),
            "2026-11-28T01:02:03Z WARNING lab guest.stopped qemu/100: VM 100 (web1) on pve1 "
            "stopped",
        ),
        (
            replace(guest_stopped(), cause=None, detected_late=True),
            "2026-11-28T01:02:03Z WARNING lab guest.stopped qemu/100: VM 100 (web1) on pve1 "
            "stopped (late)",
        ),
        (
            replace(guest_stopped(late=True), cause=Cause("user", "UPID:x:", "alice@pve")),
            "2026-11-28T01:02:03Z WARNING lab guest.stopped qemu/100: VM 100 (web1) on pve1 "
            "stopped (late) cause=user user=alice@pve task=UPID:x:",
        ),
        (
            replace(guest_stopped(), resource=None, cause=Cause("unplanned"), summary="s"),
            "2026-11-28T01:02:03Z WARNING lab guest.stopped: s cause=unplanned",
        ),
    ],
)
def test_text_line(event: Event, line: str) -> None:
    assert format_text(event) == line


def test_text_line_is_one_line_whatever_the_server_sent() -> None:
    for event in awkward_events():
        line = format_text(event)
        assert "\n" not in line
        assert "\r" not in line
        assert line.isprintable()
    assert "renamed\\nFAKE" in format_text(awkward_events()[0])


def test_json_line_is_exactly_to_dict() -> None:
    event = guest_stopped(late=True)
    line = format_json(event)
    assert "\n" not in line
    assert json.loads(line) == event.to_dict()
    assert ", " not in line  # compact


async def test_stdout_text_and_json() -> None:
    out = io.StringIO()
    await LogSink("people", stream=out).send([guest_stopped()])
    await LogSink("machines", format="json", stream=out).send([guest_stopped()])
    text, js = out.getvalue().splitlines()
    assert text == format_text(guest_stopped())
    assert json.loads(js) == guest_stopped().to_dict()


async def test_stdout_in_a_non_utf8_locale_keeps_the_event() -> None:
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="ascii")
    await LogSink("people", stream=out).send([awkward_events()[1]])
    assert raw.getvalue().startswith(b"2026-11-28T01:02:03Z INFO l\\xe4b")


async def test_file_is_appended_one_line_per_event(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("kept\n")
    sink = LogSink("file", path=str(path), format="json", fsync=True)
    events = [guest_stopped(100), guest_stopped(101)]
    for event in events:
        await sink.send([event])
        # Flushed per event: readable before the sink is closed.
        assert path.read_text().count("\n") == 1 + events.index(event) + 1
    await sink.aclose()
    kept, *lines = path.read_text().splitlines()
    assert kept == "kept"
    assert [json.loads(x) for x in lines] == [e.to_dict() for e in events]


async def test_reopen_follows_log_rotation(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    sink = LogSink("file", path=str(path))
    await sink.send([guest_stopped(100)])
    os.replace(path, tmp_path / "events.log.1")
    sink.reopen()
    await sink.send([guest_stopped(101)])
    await sink.aclose()
    assert "qemu/100" in (tmp_path / "events.log.1").read_text()
    assert "qemu/101" in path.read_text()
    assert "qemu/100" not in path.read_text()


async def test_unwritable_path_is_retryable_and_named(tmp_path: Path) -> None:
    path = tmp_path / "missing-dir" / "events.log"
    sink = LogSink("file", path=str(path))
    with pytest.raises(SinkError) as err:
        await sink.send([guest_stopped()])
    assert err.value.retryable
    assert str(path) in str(err.value)
    # Once the directory exists, the next attempt works.
    path.parent.mkdir()
    await sink.send([guest_stopped()])
    await sink.aclose()
    assert path.read_text().count("\n") == 1


async def test_send_after_close_is_a_permanent_error() -> None:
    sink = LogSink("people", stream=io.StringIO())
    await sink.aclose()
    with pytest.raises(SinkError) as err:
        await sink.send([guest_stopped()])
    assert not err.value.retryable


async def test_contract_stdout() -> None:
    await check_sink_contract(lambda: LogSink("people", stream=io.StringIO()))


async def test_contract_json_file(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    await check_sink_contract(lambda: LogSink("f", path=str(path), format="json"))
    for line in path.read_text().splitlines():
        json.loads(line)


async def test_contract_unwritable_file(tmp_path: Path) -> None:
    await check_sink_contract(lambda: LogSink("f", path=str(tmp_path / "no" / "such")))


def build_sink(cfg: SinkConfig) -> Sink:
    return sink_type(SINK_TYPES, cfg).open(cfg, SinkContext()).sink


def test_build_from_config(tmp_path: Path) -> None:
    options = LogOptions(path=str(tmp_path / "x"), format="json")
    sink = build_sink(SinkConfig("events", "log", options))
    assert isinstance(sink, LogSink)
    assert (sink.name, sink.format, sink.path, sink.fsync) == (
        "events",
        "json",
        str(tmp_path / "x"),
        False,
    )
    assert not (tmp_path / "x").exists()  # building does no I/O
    default = build_sink(SinkConfig("out", "log", LogOptions()))
    assert isinstance(default, LogSink)
    assert (default.path, default.format) == ("-", "text")
    assert "log" in SINK_TYPES


def test_builds_from_a_loaded_config(tmp_path: Path) -> None:
    # pvewatch.config validates the options (tests/config/test_sinks.py); the sink reads
    # exactly what it produced.
    watch = tmp_path / "watch.yaml"
    watch.write_text(
        "clusters: [{name: lab, endpoints: ['https://pve1'], token: 'a@pve!t=s'}]\n"
        "sinks: {audit: {type: log, format: json, path: events.jsonl, fsync: true}}\n"
    )
    (cfg,) = load_config(watch, {}, sink_types=SINK_TYPES).sinks
    sink = build_sink(cfg)
    assert isinstance(sink, LogSink)
    assert (sink.name, sink.format, sink.path, sink.fsync) == (
        "audit",
        "json",
        str(tmp_path / "events.jsonl"),
        True,
    )


def test_unknown_sink_type() -> None:
    with pytest.raises(ConfigError, match=r"sinks\.x\.type: unknown sink type 'kafka'"):
        build_sink(SinkConfig("x", "kafka", LogOptions()))
