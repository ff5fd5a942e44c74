"""`pvewatch api get PATH`: a read-only `pvesh get` over the network, through the auth,
TLS pinning and failover configured for the cluster.

Only GET exists here, by construction: `api_get` is the one call and it names the method
itself, so nothing typed on the command line can change a cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlsplit

from pvewatch.config.load import load_config
from pvewatch.config.types import ClusterConfig
from pvewatch.config.values import API_PREFIX
from pvewatch.errors import ConfigError, SourceError
from pvewatch.lifecycle import startup
from pvewatch.pve.client import PveClient
from pvewatch.sinks.table import SINK_TYPES

OUTPUT_FORMATS = ("table", "json")


def parse_api_path(text: str) -> tuple[str, dict[str, str | int]]:
    """ "/nodes/pve1/tasks?limit=5" → ("/nodes/pve1/tasks", {"limit": "5"}); a leading
    /api2/json and a full URL are accepted too, so paths can be copied from anywhere.
    ValueError when nothing usable is left."""
    parts = urlsplit(text.strip())
    path = parts.path.removeprefix(API_PREFIX)
    path = "/" + path.strip("/")
    if path == "/" and not parts.query:
        raise ValueError(f"expected an API path such as /cluster/resources, got {text!r}")
    return path, dict(parse_qsl(parts.query, keep_blank_values=True))


async def api_get(cluster: ClusterConfig, path: str, params: dict[str, str | int]) -> Any:
    """The `data` of `GET /api2/json{path}`; SourceError when it failed."""
    async with PveClient(cluster) as client:
        return await client.call("GET", path, params=params or None)


def render(data: Any, output: str) -> str:
    if output == "json":
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)
    if isinstance(data, list) and all(isinstance(row, dict) for row in data):
        return _table(data) if data else ""
    if isinstance(data, dict):
        return _table([{"key": k, "value": data[k]} for k in sorted(data)])
    if isinstance(data, list):
        return "\n".join(_cell(item) for item in data)
    return _cell(data)


def _table(rows: Sequence[dict[str, Any]]) -> str:
    """Columns in order of first appearance (`id` first), rows sorted by the first
    column: PVE returns lists in no particular order."""
    columns: dict[str, None] = {"id": None} if any("id" in r for r in rows) else {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    names = list(columns)
    cells = [[_cell(row.get(name)) for name in names] for row in rows]
    cells.sort(key=lambda line: line)
    widths = [max(len(name), *(len(line[i]) for line in cells)) for i, name in enumerate(names)]
    lines = [names, ["-" * w for w in widths], *cells]
    return "\n".join(
        "  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def api_command(
    config_path: Path,
    env: Mapping[str, str],
    path: str,
    *,
    cluster: str | None,
    output: str,
    out: TextIO,
    err: TextIO,
) -> int:
    """`pvewatch api get`: 0 and the answer, 1 when the API call failed, 2 when the
    config, the cluster name or the path is wrong. Errors are one line on `err`."""
    try:
        config = load_config(config_path, env, sink_types=SINK_TYPES)
    except ConfigError as exc:
        print(exc, file=err)
        return 2
    names = [c.name for c in config.clusters]
    chosen = next((c for c in config.clusters if c.name == (cluster or names[0])), None)
    if chosen is None:
        known = ", ".join(names)
        print(f"pvewatch api: no cluster {cluster!r} in {config_path} ({known})", file=err)
        return 2
    try:
        api_path, params = parse_api_path(path)
    except ValueError as exc:
        print(f"pvewatch api: {exc}", file=err)
        return 2
    try:
        data = asyncio.run(api_get(chosen, api_path, params))
    except (SourceError, ConfigError) as exc:
        print(f"pvewatch api: cluster {chosen.name}: {exc}", file=err)
        return 1
    text = render(data, output)
    if text:
        print(text, file=out)
    return 0


def api_get_command(args: argparse.Namespace) -> int:
    """`pvewatch api get PATH`."""
    return api_command(
        startup.config_path(args.config),
        os.environ,
        args.path,
        cluster=args.cluster,
        output=args.output,
        out=sys.stdout,
        err=sys.stderr,
    )
