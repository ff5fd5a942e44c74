"""The client's spacing between requests holds for requests made at once (a poll asks
/cluster/resources, /cluster/status and /cluster/tasks together): each waits its turn,
in the order they were made."""

from __future__ import annotations

import asyncio

import pytest
import respx

from tests.pve.test_client_errors import make


async def test_requests_made_at_once_are_spaced_in_order() -> None:
    router = respx.MockRouter(assert_all_called=False)
    for path in ("resources", "status", "tasks"):
        router.get(f"https://pve1:8006/api2/json/cluster/{path}").respond(json={"data": []})
    sleeps: list[float] = []

    async def sleep(secs: float) -> None:
        sleeps.append(secs)

    pve = make(router, "pve1", clock=lambda: 100.0, sleep=sleep, min_interval_secs=0.05)
    async with pve:
        await asyncio.gather(pve.resources(), pve.cluster_status(), pve.tasks())
    assert sleeps == pytest.approx([0.05, 0.10])
    assert [c.request.url.path.rsplit("/", 1)[1] for c in router.calls] == [
        "resources",
        "status",
        "tasks",
    ]
