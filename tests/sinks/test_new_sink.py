"""Adding a sink type takes one module and one row: here the module is the `memo` sink
below, and the row goes into a table passed in (no global registry). The config reads its
options, the shared contract holds, the daemon delivers to it, `check-config --connect`
checks it and `test-sink` tries it, and nothing else names it."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from pvewatch.config.load import check_config, load_config
from pvewatch.config.reading import Ctx, get_str, join
from pvewatch.config.types import Config, SinkConfig, SinkOptions
from pvewatch.errors import ConfigError, SinkError
from pvewatch.lifecycle import daemon
from pvewatch.model import Event
from pvewatch.net.probe import Check
from pvewatch.operate.connect import check_connections
from pvewatch.operate.deliveries import sink_test
from pvewatch.sinks.base import SinkContext, SinkType, SinkTypes
from pvewatch.sinks.table import SINK_TYPES
from tests.config.support import base, write
from tests.e2e.harness import control, simulator, watcher_config

from .contract import check_sink_contract

# --- the module a new sink type is: its options, their parse, the sink, its row --------


@dataclass(frozen=True, slots=True)
class MemoOptions(SinkOptions):
    label: str = "memo"


def parse_memo(ctx: Ctx, path: str, m: Mapping[str, object]) -> MemoOptions:
    label = get_str(ctx, join(path, "label"), m.get("label"), "memo")
    if label == "":
        ctx.add(join(path, "label"), "must not be empty")
    return MemoOptions(label or "memo")


class MemoSink:
    """Keeps what it is sent in a list it is given."""

    groups = False

    def __init__(self, name: str, label: str, kept: list[tuple[str, Event]]) -> None:
        self.name, self.label, self._kept, self._closed = name, label, kept, False

    async def send(self, events: Sequence[Event]) -> None:
        if self._closed:
            raise SinkError(f"memo sink {self.name!r} is closed", retryable=False)
        self._kept += [(self.label, e) for e in events]

    async def aclose(self) -> None:
        self._closed = True


async def check_memo(options: MemoOptions, config: Config) -> list[Check]:
    return [Check("ok", "memo", f"keeps events as {options.label!r}")]


def memo_row(kept: list[tuple[str, Event]]) -> SinkType[MemoOptions, MemoSink]:
    return SinkType(
        options=MemoOptions,
        keys=frozenset({"label"}),
        parse=parse_memo,
        build=lambda name, options, context: MemoSink(name, options.label, kept),
        check=check_memo,
    )


# --- what the rest of pvewatch does with it, given the table -----------------------------


def with_memo(kept: list[tuple[str, Event]]) -> SinkTypes:
    return {**SINK_TYPES, "memo": memo_row(kept)}


def test_the_config_reads_its_options_and_its_problems(tmp_path: Path) -> None:
    types = with_memo([])
    doc = {**base(), "sinks": {"notes": {"type": "memo", "label": "ops", "send_resolved": False}}}
    (sink,) = load_config(write(tmp_path, doc), {}, sink_types=types).sinks
    assert (sink.name, sink.type, sink.options) == ("notes", "memo", MemoOptions("ops"))
    assert sink.send_resolved is False
    out, err = io.StringIO(), io.StringIO()
    assert check_config(write(tmp_path, doc), {}, out, err, sink_types=types) == 0
    assert "sink notes: memo (label=ops)" in out.getvalue()
    bad = {**base(), "sinks": {"notes": {"type": "memo", "label": "", "colour": 1}}}
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, bad), {}, sink_types=types)
    assert caught.value.problems == [
        "sinks.notes.colour: unknown key",
        "sinks.notes.label: must not be empty",
    ]


def test_other_tables_do_not_know_it(tmp_path: Path) -> None:
    doc = {**base(), "sinks": {"notes": {"type": "memo"}}}
    known = r"sinks\.notes\.type: expected one of alertmanager, email, log, "
    with pytest.raises(ConfigError, match=known):
        load_config(write(tmp_path, doc), {}, sink_types=SINK_TYPES)


async def test_it_meets_the_sink_contract() -> None:
    cfg = SinkConfig("notes", "memo", MemoOptions())
    await check_sink_contract(lambda: memo_row([]).open(cfg, SinkContext()).sink)


async def test_the_daemon_delivers_to_it(tmp_path: Path) -> None:
    kept: list[tuple[str, Event]] = []
    with simulator() as sim:
        with control(sim) as c:
            c.patch("/resources/qemu/100", json={"status": "running"}).raise_for_status()
        sinks = (SinkConfig("notes", "memo", MemoOptions("ops")),)
        config = dataclasses.replace(watcher_config(sim, tmp_path), sinks=sinks)
        assert await daemon.once(config, sink_types=with_memo(kept)) == 0  # the baseline
        with control(sim) as c:
            c.patch("/resources/qemu/100", json={"status": "stopped"}).raise_for_status()
        assert await daemon.once(config, sink_types=with_memo(kept)) == 0
    assert [(label, e.type, e.resource and e.resource.id) for label, e in kept] == [
        ("ops", "guest.stopped", "qemu/100")
    ]


async def test_check_config_connect_and_test_sink_use_its_row() -> None:
    kept: list[tuple[str, Event]] = []
    config = Config(clusters=(), sinks=(SinkConfig("notes", "memo", MemoOptions("ops")),))
    (section,) = await check_connections(config, with_memo(kept))
    assert section.title == "sink notes (memo)"
    assert section.checks == [Check("ok", "memo", "keeps events as 'ops'")]
    out, err = io.StringIO(), io.StringIO()
    assert await sink_test(config, "notes", out=out, err=err, sink_types=with_memo(kept)) == 0
    assert out.getvalue().startswith("sink notes: sent event evt_")
    assert [(label, e.details) for label, e in kept] == [("ops", {"test": True})]
