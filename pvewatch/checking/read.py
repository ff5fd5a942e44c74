"""What each check reads, and how: `CheckReader.read(snapshot)` → a `Reading`.

Per-node checks ask only the nodes the poll's snapshot says are online (the others are
`unread`: their conditions stay as they are); a node that fails is skipped, all failing
fails the read. A 403 raises `Disabled` (naming the privilege, from PVE's message or the
check's table row); an answer saying the feature is not set up reads as idle.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote

from pvewatch.config.checks import CHECKS, CheckConfig
from pvewatch.errors import SourceAuthError, SourceError
from pvewatch.model import Snapshot
from pvewatch.watch.checks import backups, findings, nodes
from pvewatch.watch.checks.backups import Guest
from pvewatch.watch.checks.findings import BadAnswer, Reading

# What PVE answers when a feature is not set up (FACTS-health.md): the check is idle.
NOT_SET_UP = (
    "binary not installed",
    "configuration not initialized",
    "zfsutils-linux not installed",
)
_PRIVILEGE = re.compile(r"missing privilege (?P<priv>\S+) on (?P<path>\S+)")


class CheckSource(Protocol):
    """What a check needs of the PVE client: GET any path (`PveClient.call`)."""

    async def call(
        self, method: str, path: str, *, params: dict[str, str | int] | None = ...
    ) -> Any: ...


class Disabled(Exception):
    """A 403: the token lacks the privilege the check needs (the message names it)."""


class CheckReader:
    def __init__(
        self,
        cluster: str,
        check: CheckConfig,
        source: CheckSource,
        clock: Callable[[], datetime],
        logger: logging.Logger,
    ) -> None:
        self.cluster = cluster
        self.check = check
        self.name = check.name
        self.requests = 0  # made so far
        self._source = source
        self._clock = clock
        self._log = logger
        self._warned_empty = False

    async def read(self, snapshot: Snapshot | None) -> Reading | None:
        """The check's reading; None for a per-node check before the first poll (no node
        list yet). Raises Disabled, SourceError or BadAnswer when it cannot read."""
        return await self._read(snapshot)

    async def _get(self, path: str, params: dict[str, str | int] | None = None) -> Any:
        self.requests += 1
        try:
            return await self._source.call("GET", path, params=params)
        except SourceAuthError as e:
            if " 403 " not in f" {e} ":
                raise
            match = _PRIVILEGE.search(str(e))
            raise Disabled(
                f"{match['priv']} on {match['path']}" if match else CHECKS[self.name].privilege
            ) from None

    async def _optional(self, path: str) -> Any:
        """An answer that may say the feature is not set up: None then."""
        try:
            return await self._get(path)
        except SourceError as e:
            if any(text in str(e) for text in NOT_SET_UP):
                return None
            raise

    async def _per_node(
        self, nodes: list[str], read: Callable[[str], Awaitable[Any]]
    ) -> tuple[dict[str, Any], frozenset[str]]:
        """Each node's answer; the nodes that could not be read (offline, 595, ...)."""
        answers: dict[str, Any] = {}
        unread: set[str] = set()
        for node in nodes:
            try:
                answers[node] = await read(node)
            except Disabled:
                raise
            except SourceError as e:
                self._log.info(
                    "cluster %s: check %s: node %s: %s", self.cluster, self.name, node, e
                )
                unread.add(node)
        if nodes and not answers:
            raise SourceError(f"no node could be read ({', '.join(sorted(unread))})")
        return answers, frozenset(unread)

    async def _read(self, snapshot: Snapshot | None) -> Reading | None:
        name = self.name
        if name == "ha":
            current = await self._get("/cluster/ha/status/current")
            if not isinstance(current, list):
                raise BadAnswer("/cluster/ha/status/current: expected a list")
            manager: Any = {}
            if any(isinstance(r, dict) and r.get("type") == "service" for r in current):
                manager = await self._get("/cluster/ha/status/manager_status")
            return findings.ha(current, manager)
        if name == "ceph":
            status = await self._optional("/cluster/ceph/status")
            return Reading([], idle=True) if status is None else findings.ceph(self.cluster, status)
        if name == "qdevice":
            return findings.qdevice(self.cluster, await self._get("/cluster/config/qdevice"))
        if name == "backups":
            return await self._backups(snapshot)
        if snapshot is None:
            return None
        online, offline = _nodes(snapshot)
        if name == "replication":
            answers, unread = await self._per_node(
                online, lambda n: self._get(f"/nodes/{_q(n)}/replication")
            )
            names = {g.vmid: g.name for g in _guests(snapshot) if g.name}
            return findings.replication(answers, names, unread | offline)
        if name == "certificates":
            answers, unread = await self._per_node(
                online, lambda n: self._get(f"/nodes/{_q(n)}/certificates/info")
            )
            return nodes.certificates(
                answers,
                self._clock(),
                self.check.warn_days,
                self.check.critical_days,
                unread | offline,
            )
        if name == "disks":

            async def both(node: str) -> tuple[Any, Any]:
                listed = await self._get(f"/nodes/{_q(node)}/disks/list")
                return listed, await self._optional(f"/nodes/{_q(node)}/disks/zfs")

            answers, unread = await self._per_node(online, both)
            return nodes.disks(
                {n: a[0] for n, a in answers.items()},
                {n: a[1] for n, a in answers.items()},
                unread | offline,
            )
        raise ValueError(f"unknown check {name!r}")

    async def _backups(self, snapshot: Snapshot | None) -> Reading | None:
        if snapshot is None:
            return None
        missing = await self._get("/cluster/backup-info/not-backed-up")
        jobs = await self._get("/cluster/backup")
        contents: list[Any] | None = []
        seen = 0
        for node, storage in _backup_storages(jobs, snapshot):
            try:
                answer = await self._get(
                    f"/nodes/{_q(node)}/storage/{_q(storage)}/content", {"content": "backup"}
                )
            except SourceError as e:
                self._log.info("cluster %s: backups: %s on %s: %s", self.cluster, storage, node, e)
                contents = None
                break
            seen += len(answer) if isinstance(answer, list) else 0
            assert contents is not None
            contents.append(answer)
        guests = _guests(snapshot)
        if contents is not None and guests and seen == 0 and not self._warned_empty:
            # A token without Datastore.Allocate (or AllocateSpace + VM.Backup) sees no
            # backup at all: ages are unknown, not stale.
            self._warned_empty = True
            self._log.warning(
                "cluster %s: check backups sees no backup on any backup storage: backup age "
                "is not checked (the token needs Datastore.AllocateSpace and VM.Backup, or "
                "Datastore.Allocate, on the backup storages)",
                self.cluster,
            )
        if seen == 0:
            contents = None
        return backups.backups(guests, missing, contents, self._clock(), self.check.max_age_hours)


def _q(part: str) -> str:
    return quote(part, safe="")


def _nodes(snapshot: Snapshot) -> tuple[list[str], frozenset[str]]:
    """The online nodes (read) and the others (their conditions unknown)."""
    online, offline = [], set()
    for r in snapshot.resources.values():
        if r.type == "node":
            name = r.node or r.id.removeprefix("node/")
            (online.append(name) if r.status == "online" else offline.add(name))
    return sorted(online), frozenset(offline)


def _guests(snapshot: Snapshot) -> list[Guest]:
    return [
        Guest(r.vmid, r.type, r.name, r.node)
        for r in snapshot.resources.values()
        if r.type in ("qemu", "lxc") and r.vmid is not None and not r.template
    ]


def _backup_storages(jobs: object, snapshot: Snapshot) -> list[tuple[str, str]]:
    """(node, storage) to list: each job's storage (`local` by default), once for a shared
    storage, else on each online node that has it."""
    if not isinstance(jobs, list):
        raise BadAnswer("/cluster/backup: expected a list")
    names = sorted({str(j.get("storage") or "local") for j in jobs if isinstance(j, dict)})
    online, _ = _nodes(snapshot)
    found: list[tuple[str, str]] = []
    for storage in names:
        where = [
            r for r in snapshot.resources.values()
            if r.type == "storage" and r.attrs.get("storage", r.id.rpartition("/")[2]) == storage
            and r.node in online and r.status == "available"
        ]  # fmt: skip
        where.sort(key=lambda r: r.node or "")
        if any(r.attrs.get("shared") in (1, True, "1") for r in where):
            where = where[:1]
        found += [(r.node, storage) for r in where if r.node]
    return found


async def probe(reader: CheckReader, snapshot: Snapshot | None) -> tuple[str, str]:
    """One read, for `check-config --connect`: (status, what it found or why not)."""
    try:
        reading = await reader.read(snapshot)
    except Disabled as e:
        return "disabled", f"403: the token lacks {e}"
    except (SourceError, BadAnswer) as e:
        return "failing", str(e)
    if reading is None:
        return "failing", "no node list: /cluster/resources could not be read"
    if reading.idle:
        return "idle", "not set up on this cluster: nothing to watch"
    bad = sum(f.bad for f in reading.findings)
    unread = f", nodes not read: {', '.join(sorted(reading.unread_nodes))}"
    return "up", f"{len(reading.findings)} watched, {bad} bad now" + (
        unread if reading.unread_nodes else ""
    )
