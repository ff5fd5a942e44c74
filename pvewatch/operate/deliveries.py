"""The operator's delivery commands: `pvewatch deliveries`, `replay` and `test-sink`.

Each takes the loaded config and the output streams and returns the exit code: 0 done,
1 nothing done or the receiver refused, 2 a usage error (such as an unknown sink).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TextIO, TypeVar

from pvewatch.config.types import Config
from pvewatch.errors import ConfigError, SinkError, StoreError
from pvewatch.lifecycle import startup
from pvewatch.model import Event, format_time
from pvewatch.sinks.base import SinkContext, SinkTypes, Tried, delivering, sink_type
from pvewatch.sinks.formats.sample import sample_event
from pvewatch.sinks.log import escape_controls
from pvewatch.sinks.table import SINK_TYPES
from pvewatch.store.base import OutboxItem, Store
from pvewatch.store.opening import open_store

T = TypeVar("T")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _chosen_sinks(config: Config, name: str | None, err: TextIO) -> list[str] | None:
    """The sink names a command applies to: `name`, or every sink; None (after saying
    why) when `name` is not a configured sink."""
    names = [s.name for s in delivering(config.sinks, SINK_TYPES)]
    if name is None:
        return names
    if name not in names:
        print(f"no sink {name!r} in the config (sinks: {', '.join(names)})", file=err)
        return None
    return [name]


def _in_store(config: Config, err: TextIO, action: Callable[[Store], T]) -> T | None:
    """`action` on the configured state store; None, after saying why, when there is no
    store yet or it fails."""
    if config.store.postgres is None and not config.store.path.exists():
        print(f"no state store at {config.store.path} (has pvewatch run yet?)", file=err)
        return None
    try:
        with open_store(config.store) as store:
            return action(store)
    except StoreError as e:
        print(f"cannot use the state store: {e}", file=err)
        return None


def list_deliveries(
    config: Config,
    *,
    sink: str | None,
    state: str | None,
    as_json: bool,
    limit: int,
    out: TextIO,
    err: TextIO,
) -> int:
    """`pvewatch deliveries`: the pending and dead deliveries (or one state), oldest
    first, as a table or JSON lines."""
    if _chosen_sinks(config, sink, err) is None:
        return 2
    items = _in_store(config, err, lambda s: s.deliveries(sink=sink, state=state, limit=limit))
    if items is None:
        return 1
    if as_json:
        for item in items:
            print(json.dumps(_delivery_dict(item), sort_keys=True), file=out)
    else:
        _print_table(items, out)
    return 0


def _delivery_dict(item: OutboxItem) -> dict[str, object]:
    return {
        "sink": item.sink,
        "state": item.state,
        "attempts": item.attempts,
        "next_attempt_at": format_time(item.next_attempt_at) if item.state == "pending" else None,
        "last_error": item.last_error,
        "event": item.event.to_dict(),
    }


def _print_table(items: Sequence[OutboxItem], out: TextIO) -> None:
    if not items:
        print("no deliveries pending or dead", file=out)
        return
    header = ("EVENT", "TYPE", "RESOURCE", "SINK", "STATE", "TRIES", "NEXT TRY", "LAST ERROR")
    rows = [header] + [
        (
            i.event.id,
            i.event.type,
            f"{i.event.cluster}/{i.event.resource.id}" if i.event.resource else i.event.cluster,
            i.sink,
            i.state,
            str(i.attempts),
            format_time(i.next_attempt_at) if i.state == "pending" else "-",
            escape_controls(i.last_error or "-")[:120],
        )
        for i in items
    ]
    widths = [max(len(row[c]) for row in rows) for c in range(len(header) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]), file=out)


def replay(
    config: Config,
    *,
    sink: str | None,
    event_id: str | None,
    out: TextIO,
    err: TextIO,
    clock: Callable[[], datetime] = _utcnow,
) -> int:
    """`pvewatch replay`: queue again the deliveries of `event_id` (whatever their state),
    or with `event_id` None every dead delivery; of one sink or every sink."""
    sinks = _chosen_sinks(config, sink, err)
    if sinks is None:
        return 2
    count = _in_store(config, err, lambda s: s.requeue(sinks=sinks, event_id=event_id, now=clock()))
    if count is None:
        return 1
    what = f"event {event_id}" if event_id else "dead deliveries"
    where = f"sink {sink}" if sink else "every sink"
    if count == 0:
        print(f"nothing to replay: no {what} for {where}", file=err)
        return 1
    print(
        f"queued {count} deliver{'y' if count == 1 else 'ies'} again ({what}, {where}); "
        "a running pvewatch sends them within seconds, else the next start does",
        file=out,
    )
    return 0


def sample_for(config: Config, now: datetime) -> Event:
    """A sample event like a real one, marked `details.test = true`."""
    cluster = config.clusters[0].name if config.clusters else "prod"
    return dataclasses.replace(sample_event(now, cluster), details={"test": True})


async def sink_test(
    config: Config,
    name: str,
    *,
    out: TextIO,
    err: TextIO,
    clock: Callable[[], datetime] = _utcnow,
    sink_types: SinkTypes = SINK_TYPES,
) -> int:
    """`pvewatch test-sink`: send a sample event through the sink's real format, signing
    and HTTP path (not through the outbox, and whatever the sink's filter) and print what
    the receiver answered. 0 when it was delivered."""
    configs = {s.name: s for s in delivering(config.sinks, sink_types)}
    if name not in configs:
        print(f"no sink {name!r} in the config (sinks: {', '.join(configs)})", file=err)
        return 2
    try:
        opened = sink_type(sink_types, configs[name]).open(configs[name], SinkContext())
    except ConfigError as e:
        print(e, file=err)
        return 2
    event = sample_for(config, clock())
    try:
        if opened.test is not None:
            tried = await opened.test(event)
        else:
            await opened.sink.send([event])
            tried = Tried(True, (f"sink {name}: sent event {event.id} ({event.type})",))
    except SinkError as e:
        print(f"sink {name}: not delivered: {e}", file=err)
        return 1
    finally:
        await opened.sink.aclose()
    for line in tried.lines:
        print(line, file=out)
    return 0 if tried.delivered else 1


def deliveries_command(args: argparse.Namespace) -> int:
    """`pvewatch deliveries`."""
    config = startup.load_from(args)
    if config is None:
        return 2
    return list_deliveries(
        config, sink=args.sink, state=args.state, as_json=args.json, limit=args.limit,
        out=sys.stdout, err=sys.stderr,
    )  # fmt: skip


def replay_command(args: argparse.Namespace) -> int:
    """`pvewatch replay`."""
    config = startup.load_from(args)
    if config is None:
        return 2
    return replay(config, sink=args.sink, event_id=args.event, out=sys.stdout, err=sys.stderr)


def test_sink_command(args: argparse.Namespace) -> int:
    """`pvewatch test-sink NAME`."""
    config = startup.load_from(args)
    if config is None:
        return 2
    return asyncio.run(sink_test(config, args.name, out=sys.stdout, err=sys.stderr))
