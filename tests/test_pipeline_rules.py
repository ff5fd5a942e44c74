"""The rules stage of a poll: /cluster/tasks read each poll, task logs fetched once and
bounded, rule state committed with the poll, silences applied."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from pvewatch.config.rules import RulesConfig, TaskRules
from pvewatch.config.shape import ShapeConfig
from pvewatch.errors import SourceAuthError, SourceUnreachable
from pvewatch.pipeline import ClusterWatcher
from pvewatch.silence import parse_match
from pvewatch.store.sqlite import SqliteStore
from tests.test_pipeline import T0, VM, Clock, FakeSource
from tests.watch.taskrows import task

NODE: dict[str, Any] = {"id": "node/pve1", "type": "node", "node": "pve1", "status": "online"}
RUNNING: list[dict[str, Any]] = [{**VM, "status": "running"}, NODE]
STOPPED: list[dict[str, Any]] = [{**VM, "status": "stopped"}, NODE]
PLAIN = RulesConfig(shape=ShapeConfig(hold_secs={}, flapping=None))
START = int((T0 + timedelta(seconds=15)).timestamp())  # between the first two polls


def watcher(source: FakeSource, store: Any, rules: RulesConfig = PLAIN) -> ClusterWatcher:
    return ClusterWatcher(
        cluster="lab",
        interval_secs=10,
        failure_threshold=2,
        source=source,
        store=store,
        sinks=["log"],
        clock=Clock(),
        rules=rules,
    )


async def test_a_stop_is_explained_by_the_task_read_in_the_same_poll() -> None:
    source = FakeSource(RUNNING)
    with SqliteStore(":memory:") as store:
        w = watcher(source, store)
        await w.poll()
        stop = task("qmstop", user="alice@pve", start=START, end=START + 2)
        source.rows, source.task_rows = STOPPED, [stop]
        result = await w.poll()
        assert store.load_rule_state("lab")["tasks"]["reported"] == {stop["upid"]: START + 2}
    [event] = result.events
    assert event.cause is not None
    assert (event.cause.kind, event.cause.user) == ("user", "alice@pve")


async def test_an_unreadable_task_list_never_fails_the_poll() -> None:
    source = FakeSource(RUNNING, task_rows=SourceAuthError("403 Permission check failed"))
    with SqliteStore(":memory:") as store:
        w = watcher(source, store)
        await w.poll()
        source.rows = STOPPED
        result = await w.poll()
    assert result.ok
    [event] = result.events
    assert event.cause is not None
    assert event.cause.kind == "unknown"


async def test_failed_task_logs_are_fetched_once_and_bounded() -> None:
    failures = [
        task("vzdump", 100, status="job errors", start=START, end=START + i, pid=i)
        for i in range(8)
    ]
    logs = {t["upid"]: [f"line {n}" for n in range(100)] for t in failures}
    logs.pop(failures[-1]["upid"])  # the newest one's log cannot be read: reported without
    source = FakeSource(RUNNING, logs=logs)
    rules = replace(PLAIN, tasks=TaskRules(log_lines=3, logs_per_poll=4))
    with SqliteStore(":memory:") as store:
        w = watcher(source, store, rules)
        await w.poll()
        source.task_rows = failures
        result = await w.poll()
        again = await w.poll()
    assert len(source.log_requests) == 4  # the four newest, one request each
    assert [e.type for e in result.events] == ["task.failed"] * 8
    tails = [e.details.get("log_tail") for e in result.events]
    assert tails.count(["line 97", "line 98", "line 99"]) == 3
    assert again.events == []


async def test_rule_state_survives_a_restart() -> None:
    source = FakeSource(RUNNING, task_rows=[task("qmstart")])
    with SqliteStore(":memory:") as store:
        await watcher(source, store).poll()
        failed = task("vzdump", status="job errors", start=START, end=START + 1, pid=7)
        source.task_rows = [task("qmstart"), failed]
        first = await watcher(source, store).poll()  # a new process: state from the store
        second = await watcher(source, store).poll()
    assert [e.type for e in first.events] == ["task.failed"]
    assert second.events == []


async def test_a_task_seen_running_is_judged_by_its_end_after_a_restart() -> None:
    """A start listed with `"status": "running"` is no failure; pvewatch restarts while it
    runs, and the next process reports how it really ended, once."""
    source = FakeSource(RUNNING, task_rows=[task("qmstart", pid=1)])
    start = task("qmstart", 101, node="pve2", start=START, end=None, status=None, pid=2)
    with SqliteStore(":memory:") as store:
        await watcher(source, store).poll()  # the baseline
        source.task_rows = [task("qmstart", pid=1), {**start, "status": "running"}]
        running = await watcher(source, store).poll()
        ended = {**start, "status": "start failed: QEMU exited with code 1", "endtime": START + 3}
        source.task_rows = [task("qmstart", pid=1), ended]
        first = await watcher(source, store).poll()  # a new process: state from the store
        second = await watcher(source, store).poll()
    assert running.events == []
    assert [e.summary for e in first.events] == [
        "start (qmstart) of 101 on pve2 failed: start failed: QEMU exited with code 1"
    ]
    assert second.events == []


async def test_silences_are_read_from_the_store_each_poll() -> None:
    source = FakeSource(RUNNING)
    with SqliteStore(":memory:") as store:
        w = watcher(source, store)
        await w.poll()
        store.add_silence(
            parse_match("cluster=lab,type=guest.*"),
            starts_at=T0,
            ends_at=T0 + timedelta(hours=1),
            comment="",
            created_by=None,
        )
        source.rows = STOPPED
        result = await w.poll()
    assert [(e.type, e.suppressed) for e in result.events] == [("guest.stopped", "silenced")]


async def test_a_failed_poll_still_goes_through_the_rules() -> None:
    source = FakeSource(RUNNING)
    with SqliteStore(":memory:") as store:
        w = watcher(source, store)
        await w.poll()
        store.add_silence(
            parse_match("type=source.*"),
            starts_at=T0,
            ends_at=T0 + timedelta(hours=1),
            comment="",
            created_by=None,
        )
        source.fail = SourceUnreachable("connection refused")
        await w.poll()
        result = await w.poll()
    assert [(e.type, e.suppressed) for e in result.events] == [("source.unreachable", "silenced")]
