"""`pvewatch silence add | list | remove`: silences kept in the state store.

A silence marks the events it matches (`pvewatch.watch.suppress` has the syntax) as
`suppressed: silenced` while it is active: they are recorded and sent to no sink. The
running daemon reads the silences at every poll, so a change takes effect at the next one.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

from pvewatch.model import format_time
from pvewatch.store.sqlite import SqliteStore
from pvewatch.watch.suppress import Silence, parse_match


def add(
    store_path: Path,
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
    store_path.parent.mkdir(parents=True, exist_ok=True)
    with SqliteStore(store_path) as store:
        silence = store.add_silence(
            matchers, starts_at=now, ends_at=now + duration, comment=comment, created_by=created_by
        )
    print(
        f"silence {silence.id} added: {silence.match} until {format_time(silence.ends_at)}",
        file=out,
    )
    return 0


def show(store_path: Path, now: datetime, out: TextIO, *, everything: bool, as_json: bool) -> int:
    """List the silences not yet expired (every stored one with `everything`)."""
    if not store_path.exists():
        return 0
    with SqliteStore(store_path) as store:
        found = store.silences(None if everything else now)
    for silence in found:
        if as_json:
            print(json.dumps(to_dict(silence, now)), file=out)
        else:
            print(_line(silence, now), file=out)
    return 0


def remove(store_path: Path, silence_id: str, out: TextIO, err: TextIO) -> int:
    """Delete a silence; 1 when there is no such silence."""
    removed = False
    if store_path.exists():
        with SqliteStore(store_path) as store:
            removed = store.remove_silence(silence_id)
    if not removed:
        print(f"no silence {silence_id} (see `pvewatch silence list --all`)", file=err)
        return 1
    print(f"silence {silence_id} removed", file=out)
    return 0


def state(silence: Silence, now: datetime) -> str:
    if silence.active(now):
        return "active"
    return "pending" if now < silence.starts_at else "expired"


def to_dict(silence: Silence, now: datetime) -> dict[str, object]:
    return {
        "id": silence.id,
        "match": silence.match,
        "starts_at": format_time(silence.starts_at),
        "ends_at": format_time(silence.ends_at),
        "comment": silence.comment,
        "created_by": silence.created_by,
        "state": state(silence, now),
    }


def _line(silence: Silence, now: datetime) -> str:
    by = f" by {silence.created_by}" if silence.created_by else ""
    comment = f" — {silence.comment}" if silence.comment else ""
    return (
        f"{silence.id}\t{state(silence, now)}\tuntil {format_time(silence.ends_at)}"
        f"\t{silence.match}{comment}{by}"
    )
