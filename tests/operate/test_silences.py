"""Silences: kept in the store, and `pvewatch silence add | list | remove`."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pvewatch.cli import build_parser
from pvewatch.commands import parse_duration
from pvewatch.config.types import StoreConfig
from pvewatch.operate import silences
from pvewatch.silence import parse_match
from pvewatch.store.sqlite import SqliteStore
from tests.pg import fresh_database

NOW = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
MATCH = "cluster=lab,resource=qemu/100,type=guest.*"


def test_the_store_keeps_silences_until_they_expire(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    with SqliteStore(db, clock=lambda: NOW) as store:
        first = store.add_silence(
            parse_match(MATCH),
            starts_at=NOW,
            ends_at=NOW + timedelta(hours=2),
            comment="swap",
            created_by="alice",
        )
        second = store.add_silence(
            parse_match("node=pve2"),
            starts_at=NOW,
            ends_at=NOW + timedelta(minutes=5),
            comment="",
            created_by=None,
        )
    assert (first.id, second.id) == ("1", "2")
    with SqliteStore(db) as store:  # a reopen (another process) sees them
        assert store.silences(NOW) == [first, second]
        assert store.silences(NOW + timedelta(hours=1)) == [first]
        assert store.silences(None) == [first, second]
        assert store.remove_silence("2")
        assert not store.remove_silence("2")
        assert not store.remove_silence("nonsense")
        assert store.prune(NOW + timedelta(days=40), retention_days=30) >= 1
        assert store.silences(None) == []


@pytest.fixture(params=["sqlite file", "sqlite config", "postgres config"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[silences.Where]:
    """The commands take the configured store (or a SQLite file's path)."""
    if request.param == "sqlite file":
        yield tmp_path / "state.db"
    elif request.param == "sqlite config":
        yield StoreConfig(path=tmp_path / "state.db")
    else:
        with fresh_database() as pg:
            yield StoreConfig(type="postgres", postgres=pg)


def test_commands(where: silences.Where) -> None:
    store = where
    out, err = io.StringIO(), io.StringIO()
    assert silences.add(store, MATCH, timedelta(hours=2), "swap", "alice", NOW, out, err) == 0
    assert out.getvalue() == f"silence 1 added: {MATCH} until 2026-11-28T03:00:00Z\n"
    listing = io.StringIO()
    silences.show(store, NOW, listing, everything=False, as_json=False)
    assert listing.getvalue() == f"1\tactive\tuntil 2026-11-28T03:00:00Z\t{MATCH} — swap by alice\n"
    later = io.StringIO()
    silences.show(store, NOW + timedelta(hours=3), later, everything=False, as_json=False)
    assert later.getvalue() == ""
    silences.show(store, NOW + timedelta(hours=3), later, everything=True, as_json=True)
    assert json.loads(later.getvalue())["state"] == "expired"
    assert silences.remove(store, "1", out, err) == 0
    assert silences.remove(store, "1", out, err) == 1
    assert "no silence 1" in err.getvalue()


@pytest.mark.parametrize(
    ("match", "duration", "problem"),
    [
        ("color=red", timedelta(hours=1), "unknown key 'color'"),
        ("type!=guest.*", timedelta(hours=1), "at least one KEY=GLOB"),
        ("cluster=lab", timedelta(0), "must be positive"),
    ],
)
def test_add_refuses_what_would_not_work(
    tmp_path: Path, match: str, duration: timedelta, problem: str
) -> None:
    err = io.StringIO()
    assert silences.add(tmp_path / "s.db", match, duration, "", None, NOW, io.StringIO(), err) == 2
    assert problem in err.getvalue()
    assert not (tmp_path / "s.db").exists()


def test_list_and_remove_without_a_store(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert silences.show(tmp_path / "none.db", NOW, out, everything=True, as_json=False) == 0
    assert silences.remove(tmp_path / "none.db", "1", out, err) == 1
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2h", timedelta(hours=2)), ("30m", timedelta(minutes=30)), ("1.5d", timedelta(days=1.5))],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_the_command_line() -> None:
    args = build_parser().parse_args(
        ["silence", "add", "--match", MATCH, "--for", "2h", "--comment", "swap"]
    )
    assert (args.command, args.action, args.match, args.duration, args.comment) == (
        "silence",
        "add",
        MATCH,
        timedelta(hours=2),
        "swap",
    )
    args = build_parser().parse_args(["silence", "remove", "3"])
    assert (args.action, args.id) == ("remove", "3")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["silence", "add", "--match", MATCH, "--for", "soon"])
