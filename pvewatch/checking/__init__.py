"""One health check of one cluster, run on its own schedule beside the poll: read its
answers → `watch.checks.findings` → `watch.checks.evaluate` → the task behind a failed
replication or a stale backup (`watch.checks.cause`, from the last poll's task list) →
silences and maintenance → commit (memory, status and events in one transaction) → the outbox.

The poll's cost does not change: a check has its own interval and requests. Per-node
checks read only the nodes the last poll saw online: an offline node explains its disks,
pools and certificates going unreadable (their conditions stay as they were, no event).
What a check cannot read yields no event. A 403 disables the check (one warning naming
the privilege) until pvewatch restarts or reloads; a feature that is not set up (Ceph not
installed, no QDevice, no replication job) leaves the check quietly `idle`. What each
check requests: `read`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pvewatch.checking.read import CheckReader, CheckSource, Disabled
from pvewatch.config.checks import CHECKS, CheckConfig
from pvewatch.config.rules import RulesConfig
from pvewatch.errors import SourceError, StoreError
from pvewatch.model import Event, Snapshot, parse_time
from pvewatch.store.base import CheckState, Routing, Store
from pvewatch.watch import suppress
from pvewatch.watch.checks.cause import explain
from pvewatch.watch.checks.evaluate import Context, evaluate
from pvewatch.watch.checks.findings import BadAnswer, Reading
from pvewatch.watch.tasks import parse_tasks


@dataclass(frozen=True, slots=True)
class CheckResult:
    status: str  # up | idle | disabled | failing | standby (not led here, or no nodes yet)
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
        task_rows: Callable[[], Sequence[object] | None] = lambda: None,
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
        self._task_rows = task_rows
        self._rules = rules or RulesConfig()
        self._leading = leading
        self._on_commit = on_commit
        self._on_run = on_run
        self._log = logger or logging.getLogger("pvewatch.checking")
        self._first = not resumed
        self._disabled: str | None = None
        self._closed = False
        self.waiting = False  # a per-node check found no node list yet
        self._reader = CheckReader(cluster, check, source, clock, self._log)

    async def close(self) -> None:
        async with self.lock:
            self._closed = True

    async def run(self) -> CheckResult:
        async with self.lock:
            if self._closed or not self._leading():
                return CheckResult("standby")
            if self._disabled is not None:
                return CheckResult("disabled", detail=self._disabled)
            before = self._reader.requests
            result = await self._run()
            made = self._reader.requests - before
            result = CheckResult(result.status, result.events, result.detail, made, result.gauges)
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
            reading = await self._reader.read(snapshot)
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
            self.waiting = True  # the daemon runs it again after the first poll
            return CheckResult("standby", detail="waiting for the first poll")
        self.waiting = False
        now = self._clock()
        late = self._first and _older(state.get("last_run"), now, 2 * self.check.interval_secs)
        hold = self._rules.shape.hold_secs
        ctx = Context(now, late=late, hold_secs=lambda t: hold.get(t, 0.0))
        events, new_state = evaluate(self.cluster, reading, state, ctx)
        if events:
            rows = self._task_rows()
            events = explain(events, parse_tasks(rows) if rows is not None else None)
        events = await self._suppressed(events, snapshot, now)
        new_state["last_run"] = now.isoformat()
        status = "idle" if reading.idle else "up"
        if not await self._commit(new_state, status, None, events, now):
            return CheckResult("failing", detail="store: commit failed")
        self._first = False
        if events:
            self._on_commit(events)
        return CheckResult(status, events, gauges=gauges(reading))

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


def _older(raw: object, now: datetime, secs: float) -> bool:
    if not isinstance(raw, str):
        return False
    try:
        return now - parse_time(raw) > timedelta(seconds=secs)
    except ValueError:
        return False


def gauges(reading: Reading) -> dict[str, Any]:
    """What the metrics show of a reading: each finding's `details` by condition."""
    return {
        f.condition: (f.bad, f.severity.value, dict(f.details), f.resource)
        for f in reading.findings
    }
