"""One poll of one cluster, end to end: fetch rows → normalize → diff → commit.

The snapshot, its events and their outbox rows go to the store in one transaction; only
then does the in-memory state move on, so a failed commit re-diffs next time instead of
losing events. A failed poll produces no diff, only the debounced source events.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from pvewatch.config.rules import RulesConfig
from pvewatch.errors import SourceError, StoreError
from pvewatch.model import Event, Snapshot, SourceHealth
from pvewatch.observability.observe import NullObserver, Observer
from pvewatch.store.base import Routing, Store
from pvewatch.watch import health, tasks, thresholds
from pvewatch.watch.diff import diff
from pvewatch.watch.normalize import Normalizer, carry_forward, implausible
from pvewatch.watch.quorum import read_quorate
from pvewatch.watch.rows import StableRows
from pvewatch.watch.rule_input import RuleInput
from pvewatch.watch.rules import apply_rules

# Task log lines fetched per failed task; the event keeps the last `rules.tasks.log_lines`.
TASK_LOG_LIMIT = 500


class ResourceSource(Protocol):
    async def resources(self, type: str | None = None) -> list[dict[str, Any]]: ...

    async def cluster_status(self) -> list[dict[str, Any]]: ...

    async def tasks(self) -> list[dict[str, Any]]: ...

    async def task_log(
        self, node: str, upid: str, *, start: int = 0, limit: int = 50
    ) -> list[str]: ...


@runtime_checkable
class StableSource(Protocol):
    """A source that can give the rows of `resources()` as `StableRows` (pve/stable.py)."""

    async def stable_resources(self) -> StableRows | list[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class PollResult:
    ok: bool
    events: list[Event] = field(default_factory=list)
    error: str | None = None  # secret-free description of what failed
    error_kind: str | None = None  # the error class: unreachable, auth, bad_response, store
    resources: int = 0
    standby: bool = False  # not polled: another replica leads the cluster


class ClusterWatcher:
    """Polls one cluster and commits what changed. One poll at a time (`lock`)."""

    def __init__(
        self,
        *,
        cluster: str,
        interval_secs: float,
        failure_threshold: int,
        source: ResourceSource,
        store: Store,
        sinks: Routing,
        clock: Callable[[], datetime],
        on_commit: Callable[[list[Event]], None] = lambda events: None,
        logger: logging.Logger | None = None,
        observer: Observer | None = None,
        rules: RulesConfig | None = None,
        leading: Callable[[], bool] = lambda: True,
        resumed: bool = False,
    ) -> None:
        """`resumed`: built by a config reload, a moment after the last poll; its first
        poll is not a catch-up after downtime (late only after a gap of two intervals)."""
        self.cluster = cluster
        self._leading = leading  # False: another replica polls the cluster now
        self._rules = rules or RulesConfig()
        self._rule_state: dict[str, Any] = {}
        self._observer = observer or NullObserver()
        self.lock = asyncio.Lock()
        self._interval = timedelta(seconds=interval_secs)
        self._threshold = failure_threshold
        self._source = source
        self._store = store
        self._sinks = sinks
        self._clock = clock
        self._on_commit = on_commit
        self._log = logger or logging.getLogger("pvewatch.pipeline")
        self._loaded = False
        self._closed = False
        self._first_poll = not resumed
        self._snapshot: Snapshot | None = None
        self._task_rows: list[dict[str, Any]] | None = None
        self._normalize = Normalizer()
        self._health = SourceHealth()
        self._stale = False
        # The source answered the last /cluster/resources request: the next poll asks the
        # other two at the same time.
        self._answering = False

    @property
    def snapshot(self) -> Snapshot | None:
        """The last committed snapshot (None before the first poll): the health checks
        read the online nodes and the guests from it."""
        return self._snapshot

    @property
    def task_rows(self) -> list[dict[str, Any]] | None:
        """The last /cluster/tasks answer read (None before): the health checks name the
        task behind a failed replication or a stale backup from it."""
        return self._task_rows

    def forget(self) -> None:
        """From the next poll on, start again from the stored state: another replica may
        have led the cluster and committed polls meanwhile. A poll in flight finishes as
        it is (the store refuses its commit if it may not write)."""
        self._stale = True

    async def close(self) -> None:
        """Wait for an in-flight poll to finish; later polls do nothing."""
        async with self.lock:
            self._closed = True

    async def poll(self) -> PollResult:
        async with self.lock:
            if self._closed:
                return PollResult(ok=False, error="stopped")
            if not self._leading():
                return PollResult(ok=True, standby=True)
            started = time.perf_counter()
            result = await self._poll()
            self._observer.poll_finished(
                self.cluster,
                ok=result.ok,
                duration_secs=time.perf_counter() - started,
                snapshot=self._snapshot if result.ok else None,
                events=result.events,
                error_kind=result.error_kind,
            )
            return result

    async def _poll(self) -> PollResult:
        if self._stale:
            # A takeover is not a restart: changes are "detected late" only when the
            # stored snapshot is more than two intervals old.
            self._stale, self._loaded, self._first_poll = False, False, False
        if not self._loaded:
            try:
                self._snapshot, self._health = await asyncio.to_thread(
                    self._store.load, self.cluster
                )
                self._rule_state = await asyncio.to_thread(
                    self._store.load_rule_state, self.cluster
                )
            except StoreError as e:
                self._log.error("cluster %s: cannot load state: %s", self.cluster, e)
                return PollResult(ok=False, error=f"store: {e}", error_kind="store")
            self._loaded = True
        # Once the endpoint answered, /cluster/status and /cluster/tasks go out while
        # /cluster/resources is answered and decoded: their round trips no longer add up.
        # The client still spaces the three requests (resources first); a failed
        # resources request cancels the other two. After a failed poll (or at the start)
        # they wait for resources, so a dead endpoint costs one timeout, not three.
        extras = self._extras() if self._answering else None
        try:
            rows = await self._resources()
        except SourceError as e:
            self._answering = False
            await _cancel(extras)
            self._log.warning("cluster %s: poll failed (%s): %s", self.cluster, e.kind, e)
            return await self._failed(e.kind, str(e))
        except BaseException:
            await _cancel(extras)
            raise
        problem = implausible(self._snapshot, rows)
        if problem is not None:
            await _cancel(extras)
            # Not an empty cluster: diffing it would report everything removed or moved.
            self._log.warning("cluster %s: poll failed (bad_response): %s", self.cluster, problem)
            return await self._failed("bad_response", problem)
        self._answering = True
        quorate, task_rows = await (extras or self._extras())
        return await self._succeeded(rows, quorate, task_rows)

    async def _resources(self) -> StableRows | list[dict[str, Any]]:
        """The rows, as `StableRows` when the source can (a quiet poll costs a third less
        CPU), unless a threshold is to read their counters, which StableRows lack."""
        source = self._source
        if not self._rules.thresholds and isinstance(source, StableSource):
            return await source.stable_resources()
        return await source.resources()

    def _extras(self) -> asyncio.Future[tuple[bool | None, list[dict[str, Any]] | None]]:
        """The quorum and the task list, requested now (resources is asked first)."""
        return asyncio.gather(self._quorate(), self._tasks())

    async def _quorate(self) -> bool | None:
        """Quorum from /cluster/status (`read_quorate`); None when it cannot be read (no
        Sys.Audit on /, or pvedaemon down): quorum is then unknown, which is not a reason
        to fail the poll."""
        try:
            status = await self._source.cluster_status()
        except SourceError as e:
            self._log.debug("cluster %s: no quorum information (%s): %s", self.cluster, e.kind, e)
            return None
        return read_quorate(status)

    async def _tasks(self) -> list[dict[str, Any]] | None:
        """/cluster/tasks, to explain changes; None when it cannot be read: causes are then
        `unknown`, which is not a reason to fail the poll."""
        try:
            return await self._source.tasks()
        except SourceError as e:
            self._log.info("cluster %s: no task list (%s): %s", self.cluster, e.kind, e)
            return None

    async def _task_logs(self, rows: list[dict[str, Any]] | None) -> dict[str, list[str]]:
        """The log tails of tasks newly failed, one request each, at most a few per poll.
        A log that cannot be read is left out: the task is reported without it."""
        wanted = tasks.logs_wanted(rows, self._rule_state.get("tasks"), self._rules.tasks)
        logs: dict[str, list[str]] = {}
        for task in wanted:
            try:
                lines = await self._source.task_log(task.node, task.upid, limit=TASK_LOG_LIMIT)
            except SourceError as e:
                self._log.info("cluster %s: no log for %s (%s)", self.cluster, task.upid, e.kind)
                continue
            logs[task.upid] = lines[-self._rules.tasks.log_lines :]
        return logs

    async def _failed(self, kind: str, message: str) -> PollResult:
        now = self._clock()
        new_health, events = health.poll_failed(
            self._health, self.cluster, kind, self._threshold, now
        )
        last = self._snapshot or Snapshot(self.cluster, {}, now)
        inp = RuleInput(last, last, events, None, now, late=False, polled=False)
        events, rule_state = await self._apply_rules(inp)
        if not await self._commit(None, events, new_health, rule_state):
            return PollResult(ok=False, error=message, error_kind=kind)
        return PollResult(ok=False, events=events, error=message, error_kind=kind)

    async def _succeeded(
        self,
        rows: StableRows | list[dict[str, Any]],
        quorate: bool | None,
        task_rows: list[dict[str, Any]] | None,
    ) -> PollResult:
        logs = await self._task_logs(task_rows)
        now = self._clock()
        old = self._snapshot
        new = carry_forward(old, self._normalize(self.cluster, rows, now))
        new = dataclasses.replace(new, quorate=quorate)
        late = old is not None and (self._first_poll or now - old.taken_at > 2 * self._interval)
        events = diff(old, new, now, late=late)
        new_health, source_events = health.poll_succeeded(self._health, self.cluster, now)
        # The usage ratios are read from the rows only when a threshold needs them.
        usage: dict[str, Any] = {}
        if self._rules.thresholds:
            assert not isinstance(rows, StableRows)  # _resources gives the dicts then
            usage = thresholds.usage(rows)
        inp = RuleInput(old, new, source_events + events, task_rows, now, late, usage, logs)
        events, rule_state = await self._apply_rules(inp)
        if not await self._commit(new, events, new_health, rule_state):
            return PollResult(ok=False, error="store: commit failed", error_kind="store")
        self._snapshot = new
        if task_rows is not None:
            self._task_rows = task_rows
        self._first_poll = False
        if old is None:
            self._log.info(
                "cluster %s: baseline of %d resources recorded", self.cluster, len(new.resources)
            )
        return PollResult(ok=True, events=events, resources=len(new.resources))

    async def _apply_rules(self, inp: RuleInput) -> tuple[list[Event], dict[str, Any]]:
        """The rules of pvewatch.watch.rules; silences come from the store (none when it
        cannot be read: sending too much beats sending nothing)."""
        try:
            silences = await asyncio.to_thread(self._store.silences, inp.now)
        except StoreError as e:
            self._log.error("cluster %s: cannot read silences: %s", self.cluster, e)
            silences = []
        return apply_rules(inp, self._rules, self._rule_state, silences)

    async def _commit(
        self,
        snapshot: Snapshot | None,
        events: list[Event],
        new_health: SourceHealth,
        rule_state: dict[str, Any],
    ) -> bool:
        try:
            await asyncio.to_thread(
                self._store.commit_poll,
                self.cluster,
                snapshot=snapshot,
                events=events,
                sinks=self._sinks,
                health=new_health,
                # None keeps the stored state: a quiet poll writes almost nothing.
                rule_state=None if rule_state == self._rule_state else rule_state,
            )
        except StoreError as e:
            # Nothing moves on: the next poll diffs against the same old snapshot again.
            self._log.error("cluster %s: cannot store poll: %s", self.cluster, e)
            return False
        self._health = new_health
        self._rule_state = rule_state
        if events:
            self._on_commit(events)
        return True


async def _cancel(requests: asyncio.Future[Any] | None) -> None:
    """Cancel requests no longer wanted and wait until they are gone."""
    if requests is None:
        return
    requests.cancel()
    await asyncio.gather(requests, return_exceptions=True)
