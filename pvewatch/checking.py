"""One health check of one cluster, run on its own schedule beside the poll: read its
answers → `watch.checks.findings` → `watch.checks.evaluate` → silences and maintenance →
commit (memory, status and events in one transaction) → the outbox.

The poll's cost does not change: a check has its own interval and requests. Per-node
checks read only the nodes the last poll saw online: an offline node explains its disks,
pools and certificates going unreadable (their conditions stay as they were, no event).
What a check cannot read yields no event. A 403 disables the check (one warning naming
the privilege) until pvewatch restarts or reloads; a feature that is not set up (Ceph not
installed, no QDevice, no replication job) leaves the check quietly `idle`.

Over 350 lines: what each of the seven checks requests (and how it reads offline nodes,
features not set up and 403s) sits with the one run they share.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote

from pvewatch.config.checks import CHECKS, CheckConfig
from pvewatch.config.rules import RulesConfig
from pvewatch.errors import SourceAuthError, SourceError, StoreError
from pvewatch.model import Event, Snapshot, parse_time
from pvewatch.store.base import CheckState, Routing, Store
from pvewatch.watch import suppress
from pvewatch.watch.checks import backups, findings, nodes
from pvewatch.watch.checks.backups import Guest
from pvewatch.watch.checks.evaluate import Context, evaluate
from pvewatch.watch.checks.findings import BadAnswer, Reading

# What PVE answers when a feature is not set up (FACTS-health.md): the check is idle.
NOT_SET_UP = (
    "binary not installed",
    "configuration not initialized",
    "zfsutils-linux not installed",
)
_PRIVILEGE = re.compile(r"missing privilege (?P<priv>\S+) on (?P<path>\S+)")


class CheckSource(Protocol):
    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str | int] | None = None,
        data: dict[str, str] | None = None,
    ) -> Any: ...


class Disabled(Exception):
    """A 403: the token lacks the privilege the check needs."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    status: str  # up | idle | disabled | failing | standby
    events: list[Event] = field(default_factory=list)
    detail: str | None = None
    requests: int = 0
    # Per condition kind, the numbers the metrics show (see `gauges`).
    gauges: Mapping[str, Any] = field(default_factory=dict)


class CheckRunner:
    """Runs one check of one cluster. One run at a time (`lock`)."""

    def __init__(
        self,
        *,
        cluster: str,
        check: CheckConfig,
        source: CheckSource,
        store: Store,
        sinks: Routing,
        clock: Callable[[], datetime],
        snapshot: Callable[[], Snapshot | None],
        rules: RulesConfig | None = None,
        leading: Callable[[], bool] = lambda: True,
        on_commit: Callable[[list[Event]], None] = lambda events: None,
        on_run: Callable[[str, str, CheckResult], None] = lambda cluster, name, result: None,
        logger: logging.Logger | None = None,
        resumed: bool = False,
    ) -> None:
        self.cluster = cluster
        self.check = check
        self.name = check.name
        self.lock = asyncio.Lock()
        self._source = source
        self._store = store
        self._sinks = sinks
        self._clock = clock
        self._snapshot = snapshot
        self._rules = rules or RulesConfig()
        self._leading = leading
        self._on_commit = on_commit
        self._on_run = on_run
        self._log = logger or logging.getLogger("pvewatch.checking")
        self._first = not resumed
        self._disabled: str | None = None
        self._closed = False
        self._requests = 0

    async def close(self) -> None:
        async with self.lock:
            self._closed = True

    async def run(self) -> CheckResult:
        async with self.lock:
            if self._closed or not self._leading():
                return CheckResult("standby")
            if self._disabled is not None:
                return CheckResult("disabled", detail=self._disabled)
            self._requests = 0
            result = await self._run()
            result = CheckResult(
                result.status, result.events, result.detail, self._requests, result.gauges
            )
            self._on_run(self.cluster, self.name, result)
            return result

    async def _run(self) -> CheckResult:
        try:
            state = await asyncio.to_thread(self._store.load_check, self.cluster, self.name)
        except StoreError as e:
            self._log.error(
                "cluster %s: check %s: cannot load state: %s", self.cluster, self.name, e
            )
            return CheckResult("failing", detail=f"store: {e}")
        snapshot = self._snapshot()
        try:
            reading = await self._read(snapshot)
        except Disabled as e:
            self._disabled = str(e)
            self._log.warning(
                "cluster %s: check %s disabled: the token lacks %s (%s's privilege: %s)",
                self.cluster, self.name, e, self.name, CHECKS[self.name].privilege,
            )  # fmt: skip
            return await self._status_only(state, "disabled", str(e))
        except (SourceError, BadAnswer) as e:
            self._log.info("cluster %s: check %s cannot read: %s", self.cluster, self.name, e)
            return await self._status_only(state, "failing", str(e))
        if reading is None:  # per-node check before the first poll: no node list yet
            return CheckResult("failing", detail="waiting for the first poll")
        now = self._clock()
        late = self._first and _older(state.get("last_run"), now, 2 * self.check.interval_secs)
        hold = self._rules.shape.hold_secs
        ctx = Context(now, late=late, hold_secs=lambda t: hold.get(t, 0.0))
        events, new_state = evaluate(self.cluster, reading, state, ctx)
        events = await self._suppressed(events, snapshot, now)
        new_state["last_run"] = now.isoformat()
        status = "idle" if reading.idle else "up"
        if not await self._commit(new_state, status, None, events, now):
            return CheckResult("failing", detail="store: commit failed")
        self._first = False
        if events:
            self._on_commit(events)
        return CheckResult(status, events, gauges=_gauges(reading))

    async def _status_only(self, state: dict[str, Any], status: str, detail: str) -> CheckResult:
        """A run that read nothing: the memory stays, only the status changes."""
        await self._commit(state, status, detail, [], self._clock())
        return CheckResult(status, detail=detail)

    async def _suppressed(
        self, events: list[Event], snapshot: Snapshot | None, now: datetime
    ) -> list[Event]:
        if not events:
            return events
        try:
            silences = await asyncio.to_thread(self._store.silences, now)
        except StoreError as e:
            self._log.error("cluster %s: cannot read silences: %s", self.cluster, e)
            silences = []
        shown = snapshot or Snapshot(self.cluster, {}, now)
        return suppress.apply(events, shown, self._rules.maintenance, silences, now)

    async def _commit(
        self,
        state: Mapping[str, Any],
        status: str,
        detail: str | None,
        events: list[Event],
        now: datetime,
    ) -> bool:
        opened = state.get("open")
        count = len(opened) if isinstance(opened, dict) else 0
        row = CheckState(self.name, status, now, count, detail)
        try:
            await asyncio.to_thread(
                self._store.commit_check,
                self.cluster,
                self.name,
                state=state,
                status=row,
                events=events,
                sinks=self._sinks,
            )
        except StoreError as e:
            self._log.error("cluster %s: check %s: cannot store: %s", self.cluster, self.name, e)
            return False
        return True

    # --- reading ---------------------------------------------------------------------

    async def _get(self, path: str, params: dict[str, str | int] | None = None) -> Any:
        self._requests += 1
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
            if not any(isinstance(r, dict) and r.get("type") == "service" for r in current or []):
                manager: Any = {}
                if not isinstance(current, list):
                    raise BadAnswer("/cluster/ha/status/current: expected a list")
            else:
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

    _warned_empty = False


def _q(part: str) -> str:
    return quote(part, safe="")


def _older(raw: object, now: datetime, secs: float) -> bool:
    if not isinstance(raw, str):
        return False
    try:
        return now - parse_time(raw) > timedelta(seconds=secs)
    except ValueError:
        return False


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


def _gauges(reading: Reading) -> dict[str, Any]:
    """What the metrics show of a reading: each finding's `details` by condition."""
    return {
        f.condition: (f.bad, f.severity.value, dict(f.details), f.resource)
        for f in reading.findings
    }
