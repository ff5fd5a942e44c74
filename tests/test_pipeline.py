"""One poll end to end with a fake source and a real (in-memory) store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pvewatch.errors import SourceAuthError, SourceUnreachable, StoreError
from pvewatch.model import Event, Snapshot, SourceHealth
from pvewatch.pipeline import ClusterWatcher
from pvewatch.store.base import Routing
from pvewatch.store.sqlite import SqliteStore

T0 = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
VM = {"id": "qemu/100", "type": "qemu", "vmid": 100, "node": "pve1", "name": "web1"}


@dataclass
class FakeSource:
    rows: list[dict[str, Any]]
    status: list[dict[str, Any]] | Exception = field(default_factory=list)
    fail: Exception | None = None
    task_rows: list[dict[str, Any]] | Exception = field(default_factory=list)
    logs: dict[str, list[str]] = field(default_factory=dict)
    log_requests: list[str] = field(default_factory=list)

    async def resources(self, type: str | None = None) -> list[dict[str, Any]]:
        if self.fail:
            raise self.fail
        return [dict(r) for r in self.rows]

    async def cluster_status(self) -> list[dict[str, Any]]:
        if isinstance(self.status, Exception):
            raise self.status
        return self.status

    async def tasks(self) -> list[dict[str, Any]]:
        if isinstance(self.task_rows, Exception):
            raise self.task_rows
        return [dict(t) for t in self.task_rows]

    async def task_log(self, node: str, upid: str, *, start: int = 0, limit: int = 50) -> list[str]:
        self.log_requests.append(upid)
        return self.logs.get(upid, [])[start : start + limit]


@dataclass
class Recorder:
    polls: list[dict[str, Any]] = field(default_factory=list)

    def poll_finished(
        self,
        cluster: str,
        *,
        ok: bool,
        duration_secs: float,
        snapshot: Snapshot | None,
        events: Sequence[Event],
        error_kind: str | None,
    ) -> None:
        self.polls.append(
            {"ok": ok, "snapshot": snapshot, "events": [e.type for e in events], "kind": error_kind}
        )

    def delivery_finished(self, sink: str, *, outcome: str, duration_secs: float) -> None:
        raise AssertionError("no delivery here")

    def sink_enabled(self, sink: str, enabled: bool) -> None:
        raise AssertionError("no sink here")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=10)
        return self.now


def watcher(source: FakeSource, store: Any, observer: Recorder | None = None) -> ClusterWatcher:
    return ClusterWatcher(
        cluster="lab",
        interval_secs=10,
        failure_threshold=2,
        source=source,
        store=store,
        sinks=["log"],
        clock=Clock(),
        observer=observer,
    )


async def test_observer_sees_baseline_change_and_failure() -> None:
    source = FakeSource([{**VM, "status": "running"}])
    recorder = Recorder()
    with SqliteStore(":memory:") as store:
        w = watcher(source, store, recorder)
        await w.poll()
        source.rows = [{**VM, "status": "stopped"}]
        await w.poll()
        source.fail = SourceUnreachable("connection refused")
        await w.poll()
    baseline, change, failure = recorder.polls
    assert (baseline["ok"], baseline["events"]) == (True, [])
    assert baseline["snapshot"].resources["qemu/100"].status == "running"
    assert (change["ok"], change["events"]) == (True, ["guest.stopped"])
    assert (failure["ok"], failure["snapshot"], failure["kind"]) == (False, None, "unreachable")


@pytest.mark.parametrize(
    ("status", "quorate"),
    [
        ([{"type": "cluster", "id": "cluster", "quorate": 1}, {"type": "node"}], True),
        ([{"type": "node"}, {"type": "cluster", "id": "cluster", "quorate": 0}], False),
        ([{"type": "node", "id": "node/pve", "local": 1, "online": 1}], True),  # standalone
        ([{"type": "cluster", "id": "cluster", "quorate": "0"}, {"type": "node"}], False),
        ([{"type": "cluster", "id": "cluster"}, {"type": "node"}], None),  # says nothing
        ([], None),
        (SourceAuthError("403 Permission check failed (/, Sys.Audit)"), None),
        (SourceUnreachable("595 Connection refused"), None),
    ],
)
async def test_quorum_from_cluster_status_never_fails_the_poll(
    status: list[dict[str, Any]] | Exception, quorate: bool | None
) -> None:
    recorder = Recorder()
    with SqliteStore(":memory:") as store:
        result = await watcher(FakeSource([VM], status), store, recorder).poll()
    assert result.ok
    assert recorder.polls[0]["snapshot"].quorate is quorate


class FlakyStore:
    """A real store whose commits fail while `broken` is set."""

    def __init__(self) -> None:
        self.inner = SqliteStore(":memory:")
        self.broken = False

    def load(self, cluster: str) -> tuple[Snapshot | None, SourceHealth]:
        return self.inner.load(cluster)

    def commit_poll(
        self,
        cluster: str,
        *,
        snapshot: Snapshot | None,
        events: Sequence[Event],
        sinks: Routing,
        health: SourceHealth,
        rule_state: Mapping[str, Any] | None = None,
    ) -> None:
        if self.broken:
            raise StoreError("disk full")
        self.inner.commit_poll(
            cluster,
            snapshot=snapshot,
            events=events,
            sinks=sinks,
            health=health,
            rule_state=rule_state,
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_a_failed_commit_loses_nothing_the_next_poll_reports_it() -> None:
    source = FakeSource([{**VM, "status": "running"}])
    store = FlakyStore()
    w = watcher(source, store)
    await w.poll()
    source.rows = [{**VM, "status": "stopped"}]
    store.broken = True
    failed = await w.poll()
    assert (failed.ok, failed.error_kind) == (False, "store")
    assert store.inner.events() == []
    store.broken = False
    retried = await w.poll()
    assert [e.type for e in retried.events] == ["guest.stopped"]
    assert [e.type for e in store.inner.events()] == ["guest.stopped"]
    store.inner.close()


async def test_a_closed_watcher_polls_no_more() -> None:
    source = FakeSource([VM])
    with SqliteStore(":memory:") as store:
        w = watcher(source, store)
        await w.close()
        result = await w.poll()
        assert (result.ok, result.error) == (False, "stopped")
        assert store.load("lab") == (None, SourceHealth())


async def test_a_quiet_poll_writes_only_the_clusters_row() -> None:
    """Counters move on every poll; a poll that changes nothing else writes no resource
    and no rule state, only the cluster's row (when it was polled, its health)."""
    node = {"id": "node/pve1", "type": "node", "node": "pve1", "status": "online"}
    source = FakeSource([node, {**VM, "status": "running", "cpu": 0.1}])
    with SqliteStore(":memory:") as store:
        w = watcher(source, store)
        await w.poll()
        await w.poll()  # the first poll after the baseline records the task baseline
        for cpu in (0.2, 0.3):
            source.rows = [node, {**VM, "status": "running", "cpu": cpu, "uptime": cpu}]
            before = store.total_changes
            result = await w.poll()
            assert (result.ok, result.events) == (True, [])
            assert store.total_changes - before == 1


async def test_a_standby_does_not_poll_and_a_takeover_starts_from_the_store() -> None:
    """Two replicas' watchers of one cluster on one store, leading in turn: the one taking
    over is told to forget, and reports nothing the other one already did."""
    leads = {"one": True, "two": False}
    source = FakeSource([{**VM, "status": "running"}])

    def replica(name: str, store: Any) -> ClusterWatcher:
        return ClusterWatcher(cluster="lab", interval_secs=10, failure_threshold=2,
                              source=source, store=store, sinks=["log"], clock=Clock(),
                              leading=lambda: leads[name])  # fmt: skip

    with SqliteStore(":memory:") as store:
        one, two = replica("one", store), replica("two", store)
        assert (await two.poll()).standby
        assert (await one.poll()).ok  # the baseline, in one's memory too
        leads.update(one=False, two=True)
        two.forget()
        source.rows = [{**VM, "status": "stopped"}]
        stopped = await two.poll()
        assert [e.type for e in stopped.events] == ["guest.stopped"]
        assert not stopped.events[0].detected_late  # a takeover is not a restart
        assert (await one.poll()).standby
        leads.update(one=True, two=False)
        one.forget()
        again = await one.poll()
        assert again.ok
        assert again.events == []  # not guest.stopped again under a new id
