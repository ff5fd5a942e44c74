"""`pvewatch check-config --connect`: try every endpoint of every cluster the way the
daemon will (same PveClient, auth and TLS) and say what works, what does not and why.

Per endpoint: TLS (when the handshake fails, the certificate the server showed, so that
its fingerprint can be pinned), auth, the PVE version, and what the token can see. PVE
never answers 403 for what a token may not see: it leaves it out (FACTS.md §2.7), so a
token without VM.Audit sees nodes and no guests, and one without Sys.Audit on / gets 403
from /cluster/status and an empty /cluster/tasks (§3.3, §4). Those are warnings that name
the missing privilege. Then each health check of the cluster (docs/checks.md), read once:
its privilege and its result (up, idle, disabled by a 403, failing). Then every sink,
through its type's `check`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from pvewatch.checking.read import CheckReader, probe
from pvewatch.config.checks import CHECKS
from pvewatch.config.load import check_config, load_config
from pvewatch.config.types import ClusterConfig, Config, SinkConfig
from pvewatch.errors import ConfigError, SourceAuthError, SourceError, SourceUnreachable
from pvewatch.lifecycle import startup
from pvewatch.model import Snapshot
from pvewatch.net.probe import Check, ProbeError, host_port, reach
from pvewatch.net.tls import unverified_context
from pvewatch.operate.report import Section, exit_code, render
from pvewatch.pve.client import PveClient
from pvewatch.sinks.base import SinkTypes, sink_type
from pvewatch.sinks.table import SINK_TYPES
from pvewatch.watch.normalize import Normalizer

GUEST_TYPES = ("qemu", "lxc")


async def check_connections(config: Config, sink_types: SinkTypes = SINK_TYPES) -> list[Section]:
    """One section per cluster endpoint and per sink, checked concurrently."""
    quiet = _quiet_logger()
    jobs = [
        _check_endpoint(cluster, endpoint, quiet)
        for cluster in config.clusters
        for endpoint in cluster.endpoints
    ]
    jobs += [_check_sink(sink, config, sink_types) for sink in config.sinks]
    return list(await asyncio.gather(*jobs))


async def _check_sink(sink: SinkConfig, config: Config, sink_types: SinkTypes) -> Section:
    section = Section(f"sink {sink.name} ({sink.type})")
    section.checks += await sink_type(sink_types, sink).run_check(sink, config)
    return section


async def _check_endpoint(cluster: ClusterConfig, endpoint: str, log: logging.Logger) -> Section:
    section = Section(f"cluster {cluster.name}: {endpoint}")
    single = dataclasses.replace(cluster, endpoints=(endpoint,))
    try:
        client = PveClient(single, logger=log, min_interval_secs=0)
    except ConfigError as exc:
        section.add("fail", "config", "; ".join(exc.problems))
        return section
    async with client:
        try:
            version = await client.version()
        except SourceError as exc:
            await _explain_failure(section, cluster, endpoint, exc)
            return section
        section.checks += _tls_ok(cluster, endpoint)
        section.add("ok", "auth", f"{_credential(cluster)} accepted")
        section.add("ok", "version", f"Proxmox VE {version.get('version', '(not given)')}")
        section.checks += await _visible(client, cluster)
        section.checks += await _health_checks(client, cluster, log)
    return section


async def _health_checks(
    client: PveClient, cluster: ClusterConfig, log: logging.Logger
) -> list[Check]:
    """Each configured health check, read once: its privilege and what it got."""
    if not cluster.checks:
        return []
    try:
        rows = await client.resources()
        snapshot: Snapshot | None = Normalizer()(cluster.name, rows, datetime.now(UTC))
    except (SourceError, ValueError):
        snapshot = None
    found = []
    for check in cluster.checks:
        reader = CheckReader(cluster.name, check, client, lambda: datetime.now(UTC), log)
        status, detail = await probe(reader, snapshot)
        needs = CHECKS[check.name].privilege
        message = f"{status}: {detail} (needs {needs})"
        fine = status in ("up", "idle")
        found.append(Check("ok" if fine else "warn", f"check {check.name}", message))
    return found


async def _visible(client: PveClient, cluster: ClusterConfig) -> list[Check]:
    try:
        rows = await client.resources()
    except SourceError as exc:
        return [Check("fail", "visible", f"/cluster/resources: {_strip(exc)}")]
    status_error: str | None = None
    try:
        await client.cluster_status()
    except SourceAuthError as exc:
        status_error = _strip(exc)
    except SourceError as exc:  # 595 when the local pvedaemon is down: not a privilege issue
        return [*visibility(rows, None, None), Check("warn", "status", _strip(exc))]
    tasks: int | None = None
    if status_error is None:
        try:
            tasks = len(await client.tasks())
        except SourceError as exc:
            return [*visibility(rows, None, None), Check("warn", "tasks", _strip(exc))]
    return visibility(rows, status_error, tasks, grant=_grant(cluster))


def visibility(
    rows: Sequence[dict[str, Any]],
    status_error: str | None,
    tasks: int | None,
    *,
    grant: str = "pveum acl modify / --tokens 'USER@REALM!TOKEN' --roles PVEAuditor",
) -> list[Check]:
    """What the counts of visible resources say about the token's privileges. Pure.
    `status_error`: why /cluster/status was refused (403: no Sys.Audit on /), if it was;
    `tasks`: how many tasks /cluster/tasks listed (None: not asked)."""
    types = Counter(str(row.get("type")) for row in rows)
    nodes, storages = types["node"], types["storage"]
    guests = sum(types[t] for t in GUEST_TYPES)
    seen = (
        f"{nodes} nodes, {guests} guests ({types['qemu']} VMs, {types['lxc']} containers),"
        f" {storages} storages, {types['pool']} pools"
    )
    if tasks is not None:
        seen += f", {tasks} recent tasks"
    checks = [Check("ok", "visible", seen)]
    if nodes and not guests:
        checks.append(
            Check(
                "warn",
                "privileges",
                "sees nodes but no guests: missing VM.Audit, so no guest is watched"
                " (if the cluster really has no guests, ignore this)",
            )
        )
    if nodes and not storages:
        checks.append(
            Check("warn", "privileges", "sees no storages: missing Datastore.Audit on /storage")
        )
    if status_error is not None:
        checks.append(
            Check(
                "warn",
                "privileges",
                f"/cluster/status refused ({status_error}): missing Sys.Audit on /, so no"
                " quorum events and no tasks (changes get no cause, failed tasks go unseen)",
            )
        )
    if len(checks) > 1:
        checks.append(Check("hint", "", f"read-only access to everything: {grant}"))
    return checks


async def _explain_failure(
    section: Section, cluster: ClusterConfig, endpoint: str, exc: SourceError
) -> None:
    message = _strip(exc)
    if isinstance(exc, SourceAuthError):
        section.checks += _tls_ok(cluster, endpoint)
        section.add("fail", "auth", f"{_credential(cluster)} refused: {message}")
        return
    if not isinstance(exc, SourceUnreachable) or "cannot connect" not in message:
        section.add("fail", "answer", message)
        return
    host, port, tls = host_port(endpoint)
    try:
        context = unverified_context() if tls else None
        seen = await reach(host, port, tls=context, timeout_secs=cluster.timeout_secs)
    except ProbeError as probe:
        section.add("fail", "connect", str(probe))
        return
    # TCP and an unverified handshake work, so the certificate is what was refused.
    section.add("fail", "tls", message.partition("cannot connect: ")[2] or message)
    if seen.fingerprint:
        section.add("hint", "", f"the server's certificate has SHA-256 {seen.fingerprint}")
        section.add(
            "hint",
            "",
            "if that is your node's (PVE GUI: Node → System → Certificates), pin it: "
            f'tls: {{fingerprint: "{seen.fingerprint}"}}',
        )


def _tls_ok(cluster: ClusterConfig, endpoint: str) -> list[Check]:
    if endpoint.startswith("http://"):
        return [Check("warn", "tls", "none: plain http, the token travels unencrypted")]
    by_mode = {
        "pinned": "certificate matches the pinned fingerprint",
        "ca_file": f"certificate verified with {cluster.tls.ca_file}",
        "system": "certificate verified by the system's CAs",
    }
    if cluster.tls.mode == "insecure":
        return [Check("warn", "tls", "certificate NOT checked (tls.verify: false); pin it")]
    return [Check("ok", "tls", by_mode[cluster.tls.mode])]


def _credential(cluster: ClusterConfig) -> str:
    if cluster.token is not None:
        return "token " + cluster.token.reveal().split("=", 1)[0]  # the token id is public
    return f"user {cluster.username}"


def _grant(cluster: ClusterConfig) -> str:
    if cluster.token is None:
        return f"pveum acl modify / --users {cluster.username} --roles PVEAuditor"
    token_id = cluster.token.reveal().split("=", 1)[0]
    user = token_id.split("!", 1)[0]
    # A privilege-separated token has what both it and its user have: grant both.
    return (
        f"pveum acl modify / --users {user} --roles PVEAuditor && "
        f"pveum acl modify / --tokens '{token_id}' --roles PVEAuditor"
    )


def _strip(exc: SourceError) -> str:
    """The error without the endpoint in front, which the section title already says."""
    text = str(exc)
    prefix = f"{exc.endpoint}: " if exc.endpoint else ""
    return text[len(prefix) :] if prefix and text.startswith(prefix) else text


def _quiet_logger() -> logging.Logger:
    """The client's warnings (plain http, verify off) are reported as checks instead."""
    log = logging.Logger("pvewatch.check")
    log.addHandler(logging.NullHandler())
    return log


def check_and_connect(path: Path, env: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    """`pvewatch check-config --connect`: the config check, then every connection.
    0: all fine (warnings allowed), 1: something cannot work, 2: the config is invalid."""
    code = check_config(path, env, out, err, sink_types=SINK_TYPES)
    if code != 0:
        return code
    config = load_config(path, env, sink_types=SINK_TYPES)
    print("", file=out)
    sections = asyncio.run(check_connections(config))
    for line in render(sections):
        print(line, file=out)
    return exit_code(sections)


def check_config_command(args: argparse.Namespace) -> int:
    """`pvewatch check-config [--connect]`."""
    path = startup.config_path(args.config)
    if args.connect:
        return check_and_connect(path, os.environ, sys.stdout, sys.stderr)
    return check_config(path, os.environ, sys.stdout, sys.stderr, sink_types=SINK_TYPES)
