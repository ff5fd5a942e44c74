"""`pvewatch events`: recent events from the state store, as the text log sink writes
them or one JSON object per line."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from datetime import UTC, datetime

from pvewatch.commands import parse_duration
from pvewatch.errors import StoreError
from pvewatch.lifecycle import startup
from pvewatch.sinks.log import format_text
from pvewatch.store.opening import open_store


def parse_since(value: str, now: datetime) -> datetime:
    """`30s`, `15m`, `1h`, `2d` ago, or an ISO 8601 time (UTC if no offset)."""
    with contextlib.suppress(argparse.ArgumentTypeError):
        return now - parse_duration(value)
    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--since: expected a duration like 1h or 30m, or an ISO time, got {value!r}"
        ) from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def events_command(args: argparse.Namespace) -> int:
    """0 with the events; 1 when there is no store or it cannot be read; 2 for bad input."""
    config = startup.load_from(args)
    if config is None:
        return 2
    if config.store.postgres is None and not config.store.path.exists():
        print(f"no state store at {config.store.path} (has pvewatch run yet?)", file=sys.stderr)
        return 1
    try:
        since = parse_since(args.since, datetime.now(UTC))
    except argparse.ArgumentTypeError as e:
        print(e, file=sys.stderr)
        return 2
    try:
        with open_store(config.store) as store:
            events = store.events(
                since=since,
                type_pattern=args.type_pattern,
                cluster=args.cluster,
                limit=args.limit,
            )
    except StoreError as e:
        print(f"cannot read the state store: {e}", file=sys.stderr)
        return 1
    for event in events:
        print(json.dumps(event.to_dict()) if args.json else format_text(event))
    return 0
