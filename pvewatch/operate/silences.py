"""`pvewatch silence add | list | remove`: silences kept in the state store.

A silence marks the events it matches (`pvewatch.watch.suppress` has the syntax) as
`suppressed: silenced` while it is active: they are recorded and sent to no sink. The
running daemon reads the silences at every poll, so a change takes effect at the next one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from pvewatch.config.types import StoreConfig
from pvewatch.errors import StoreError
from pvewatch.lifecycle import startup
from pvewatch.model import format_time
from pvewatch.silence import Silence, parse_match
from pvewatch.store.base import Store
from pvewatch.store.opening import open_store
from pvewatch.store.sqlite import SqliteStore

# The configured store, or the path of a SQLite file.
Where = StoreConfig | Path


def _open(store: Where) -> Store:
    return SqliteStore(store) if isinstance(store, Path) else open_store(store)


def _exists(store: Where) -> bool:
    """False when there is no SQLite file yet (nothing to list or remove)."""
    path = store if isinstance(store, Path) else store.path
    return path.exists() or (isinstance(store, StoreConfig) and store.postgres is not None)


def add(
    store_path: Where,
    match: str,
    duration: timedelta,
    comment: str,
    created_by: str | None,
    now: datetime,
    out: TextIO,
    err: TextIO,
) -> int:
    """Store a new silence from now for `duration`; 0, or 2 when the match is invalid."""
    try:
        matchers = parse_match(match)
    except ValueError as e:
        print(e, file=err)
        return 2
    if duration <= timedelta(0):
        print("--for: the duration must be positive", file=err)
        return 2
    if isinstance(store_path, Path):
        store_path.parent.mkdir(parents=True, exist_ok=True)
    with _open(store_path) as store:
        silence = store.add_silence(
            matchers, starts_at=now, ends_at=now + duration, comment=comment, created_by=created_by
        )
    print(
        f"silence {silence.id} added: {silence.match} until {format_time(silence.ends_at)}",
        file=out,
    )
    return 0


def show(store_path: Where, now: datetime, out: TextIO, *, everything: bool, as_json: bool) -> int:
    """List the silences not yet expired (every stored one with `everything`)."""
    if not _exists(store_path):
        return 0
    with _open(store_path) as store:
        found = store.silences(None if everything else now)
    for silence in found:
        if as_json:
            print(json.dumps(silence.to_dict(now)), file=out)
        else:
            print(_line(silence, now), file=out)
    return 0


def remove(store_path: Where, silence_id: str, out: TextIO, err: TextIO) -> int:
    """Delete a silence; 1 when there is no such silence."""
    removed = False
    if _exists(store_path):
        with _open(store_path) as store:
            removed = store.remove_silence(silence_id)
    if not removed:
        print(f"no silence {silence_id} (see `pvewatch silence list --all`)", file=err)
        return 1
    print(f"silence {silence_id} removed", file=out)
    return 0


def _line(silence: Silence, now: datetime) -> str:
    by = f" by {silence.created_by}" if silence.created_by else ""
    comment = f" — {silence.comment}" if silence.comment else ""
    return (
        f"{silence.id}\t{silence.state(now)}\tuntil {format_time(silence.ends_at)}"
        f"\t{silence.match}{comment}{by}"
    )


def add_command(args: argparse.Namespace) -> int:
    """`pvewatch silence add`."""
    by = args.by or os.environ.get("USER") or None
    return _in_store(
        args,
        lambda store, now: add(
            store, args.match, args.duration, args.comment, by, now, sys.stdout, sys.stderr
        ),
    )


def list_command(args: argparse.Namespace) -> int:
    """`pvewatch silence list`."""
    return _in_store(
        args,
        lambda store, now: show(store, now, sys.stdout, everything=args.all, as_json=args.json),
    )


def remove_command(args: argparse.Namespace) -> int:
    """`pvewatch silence remove ID`."""
    return _in_store(args, lambda store, now: remove(store, args.id, sys.stdout, sys.stderr))


def _in_store(args: argparse.Namespace, action: Callable[[Where, datetime], int]) -> int:
    config = startup.load_from(args)
    if config is None:
        return 2
    try:
        return action(config.store, datetime.now(UTC))
    except StoreError as e:
        print(f"cannot use the state store: {e}", file=sys.stderr)
        return 1
