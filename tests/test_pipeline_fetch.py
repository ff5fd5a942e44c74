"""The three requests of a poll: once the source has answered a poll, /cluster/status and
/cluster/tasks go out while /cluster/resources is still being answered, and are cancelled
when it fails; after a failed poll they wait for resources again."""

from __future__ import annotations

import asyncio
from typing import Any

from pvewatch.errors import SourceUnreachable
from pvewatch.pipeline import ClusterWatcher
from pvewatch.store.sqlite import SqliteStore
from tests.test_pipeline import VM, watcher


class GatedSource:
    """/cluster/resources answers when `answer` is set (or fails with `fail`); the other
    two answer at once, or hang when `hang` is set, recording when they were asked."""

    def __init__(self, *, fail: Exception | None = None, hang: bool = False) -> None:
        self.answer = asyncio.Event()
        self.fail = fail
        self.hang = hang
        self.asked: list[str] = []
        self.cancelled: list[str] = []

    async def resources(self, type: str | None = None) -> list[dict[str, Any]]:
        self.asked.append("resources")
        await self.answer.wait()
        if self.fail is not None:
            raise self.fail
        return [dict(VM, status="running"), {"id": "node/pve1", "type": "node", **NODE}]

    async def _other(self, name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.asked.append(name)
        try:
            if self.hang:
                await asyncio.Event().wait()
            return rows
        except asyncio.CancelledError:
            self.cancelled.append(name)
            raise

    async def cluster_status(self) -> list[dict[str, Any]]:
        return await self._other("status", [{"type": "cluster", "quorate": 1}])

    async def tasks(self) -> list[dict[str, Any]]:
        return await self._other("tasks", [])

    async def task_log(self, node: str, upid: str, *, start: int = 0, limit: int = 50) -> list[str]:
        return []


NODE = {"node": "pve1", "status": "online"}


async def _until(condition: Any) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0)


async def _answered_once(source: GatedSource, store: SqliteStore) -> ClusterWatcher:
    """A watcher whose first poll was answered; the source's record starts afresh."""
    w = watcher(source, store)  # type: ignore[arg-type]
    source.answer.set()
    assert (await w.poll()).ok
    source.answer.clear()
    source.asked.clear()
    return w


async def test_status_and_tasks_are_asked_while_resources_is_answered() -> None:
    source = GatedSource()
    with SqliteStore(":memory:") as store:
        w = await _answered_once(source, store)
        poll = asyncio.create_task(w.poll())
        await _until(lambda: len(source.asked) == 3)
        assert source.asked == ["resources", "status", "tasks"]
        assert not poll.done()
        source.answer.set()
        result = await poll
    assert result.ok
    assert result.resources == 2


async def test_a_failed_resources_request_cancels_the_other_two() -> None:
    source = GatedSource()
    with SqliteStore(":memory:") as store:
        w = await _answered_once(source, store)
        source.fail, source.hang = SourceUnreachable("connection refused"), True
        poll = asyncio.create_task(w.poll())
        await _until(lambda: len(source.asked) == 3)
        source.answer.set()
        result = await poll
    assert (result.ok, result.error_kind) == (False, "unreachable")
    assert sorted(source.cancelled) == ["status", "tasks"]


async def test_the_first_poll_and_one_after_a_failure_ask_resources_alone_first() -> None:
    """An endpoint that does not answer costs one timeout, not three."""
    source = GatedSource()
    with SqliteStore(":memory:") as store:
        w = watcher(source, store)  # type: ignore[arg-type]
        for _ in range(2):  # the first poll; then one after a failed poll
            source.asked.clear()
            poll = asyncio.create_task(w.poll())
            await _until(lambda: source.asked == ["resources"])
            for _ in range(20):  # what was started would run by now
                await asyncio.sleep(0)
            assert source.asked == ["resources"]
            source.answer.set()
            assert (await poll).ok
            assert sorted(source.asked) == ["resources", "status", "tasks"]
            source.answer.clear()
            source.fail = SourceUnreachable("connection refused")
            source.answer.set()
            assert not (await w.poll()).ok
            source.answer.clear()
            source.fail = None
