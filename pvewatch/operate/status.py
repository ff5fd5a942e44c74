"""`pvewatch status`: which replica leads which cluster, since when, and the last poll.

With PostgreSQL the leader is the replica whose session holds the cluster's lock now
(hostname:pid, or its `replica_id`); with SQLite one pvewatch does everything.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

from pvewatch.config.types import Config
from pvewatch.errors import StoreError
from pvewatch.lifecycle import startup
from pvewatch.model import SourceHealth, format_time
from pvewatch.store.base import ClusterStatus
from pvewatch.store.opening import open_store


def show_status(config: Config, now: datetime, out: TextIO, err: TextIO, *, as_json: bool) -> int:
    """0 with a line (or JSON object) per configured cluster; 1 when the store cannot be
    read or does not exist yet."""
    if config.store.postgres is None and not config.store.path.exists():
        print(f"no state store at {config.store.path} (has pvewatch run yet?)", file=err)
        return 1
    try:
        with open_store(config.store) as store:
            found = {s.cluster: s for s in store.status()}
    except StoreError as e:
        print(f"cannot read the state store: {e}", file=err)
        return 1
    single = config.store.postgres is None
    rows = [
        found.get(c.name) or ClusterStatus(c.name, None, SourceHealth()) for c in config.clusters
    ]
    if as_json:
        for row in rows:
            print(json.dumps(to_dict(row, single=single)), file=out)
        return 0
    print(_table(rows, now, single=single), file=out)
    return 0


def to_dict(row: ClusterStatus, *, single: bool) -> dict[str, object]:
    return {
        "cluster": row.cluster,
        "leader": "single replica (SQLite)" if single else row.leader,
        "leader_since": format_time(row.leader_since) if row.leader_since else None,
        "last_poll": format_time(row.last_poll) if row.last_poll else None,
        "unreachable": row.health.unreachable,
        "consecutive_failures": row.health.consecutive_failures,
        "last_error": row.health.last_error,
    }


def _ago(t: datetime | None, now: datetime) -> str:
    if t is None:
        return "-"
    secs = max(0, int((now - t).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{format_time(t)} ({secs // size}{unit} ago)"
    return f"{format_time(t)} ({secs}s ago)"


def _source(row: ClusterStatus) -> str:
    health = row.health
    if health.unreachable:
        return f"unreachable ({health.consecutive_failures} failed polls)"
    if health.consecutive_failures:
        return f"{health.consecutive_failures} failed poll(s)"
    return "ok" if row.last_poll else "never polled"


def _table(rows: Sequence[ClusterStatus], now: datetime, *, single: bool) -> str:
    lines = [("CLUSTER", "LEADER", "SINCE", "LAST POLL", "SOURCE")]
    for row in rows:
        leader = "single replica (SQLite)" if single else (row.leader or "none")
        since = "-" if single else _ago(row.leader_since, now)
        lines.append((row.cluster, leader, since, _ago(row.last_poll, now), _source(row)))
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line[:4], widths, strict=True))
        + "  "
        + line[4]
        for line in lines
    )


def status_command(args: argparse.Namespace) -> int:
    """`pvewatch status`."""
    config = startup.load_from(args)
    if config is None:
        return 2
    return show_status(config, datetime.now(UTC), sys.stdout, sys.stderr, as_json=args.json)
