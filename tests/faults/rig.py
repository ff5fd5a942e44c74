"""pvewatch in-process against the simulator, polled by hand: the daemon's own wiring
(`pvewatch.lifecycle.runtime.open_runtime`) without its scheduler, so a test decides when
each poll happens and what the API answers to it."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from pvewatch.config.types import ClusterConfig, Config, HttpConfig, TlsConfig
from pvewatch.lifecycle.runtime import Runtime, open_runtime
from pvewatch.model import Event
from pvewatch.pipeline import ClusterWatcher, PollResult
from pvewatch.pve.client import PveClient
from pvewatch.secret import Secret
from pvewatch.simulator.server import SimServer
from pvewatch.sinks.log import LogOptions
from pvewatch.store.base import Store
from tests.e2e.harness import TOKEN, control, read_events, watcher_config

# Faults go to the resource list only, so one failing answer is one failed poll.
RESOURCES = "/cluster/resources"
TIMEOUT_SECS = 0.5


def fault_config(sim: SimServer, tmp: Path, *, threshold: int = 2) -> Config:
    config = watcher_config(sim, tmp, threshold=threshold)
    cluster = dataclasses.replace(config.clusters[0], timeout_secs=TIMEOUT_SECS)
    return dataclasses.replace(config, clusters=(cluster,))


def pinned_cluster(name: str, sim: SimServer, *endpoints: str, **fields: Any) -> ClusterConfig:
    """A cluster of `sim` (or of `endpoints`) with its certificate pinned; the test token
    unless `fields` give other credentials."""
    assert sim.fingerprint is not None
    settings: dict[str, Any] = {"token": Secret(TOKEN), "timeout_secs": 2.0} | fields
    tls = TlsConfig(fingerprints=(sim.fingerprint,))
    return ClusterConfig(name=name, endpoints=endpoints or (sim.url,), tls=tls, **settings)


def hand_watcher(
    cluster: ClusterConfig, client: PveClient, store: Store, **options: Any
) -> ClusterWatcher:
    """A watcher polled by hand (no daemon), its events routed to the sink `events`."""
    return ClusterWatcher(
        cluster=cluster.name,
        interval_secs=10,
        failure_threshold=cluster.source_failure_threshold,
        source=client,
        store=store,
        sinks=["events"],
        clock=lambda: datetime.now(UTC),
        **options,
    )


def status(code: int, count: int = 3) -> dict[str, Any]:
    return {"kind": "status", "code": code, "count": count, "path": RESOURCES}


def body(text: str, count: int = 1, code: int = 200) -> dict[str, Any]:
    return {"kind": "body", "body": text, "code": code, "count": count, "path": RESOURCES}


def fault(kind: str, count: int = 3, **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "count": count, "path": RESOURCES, **extra}


@dataclass
class Rig:
    sim: SimServer
    runtime: Runtime
    events_file: Path

    async def poll(self) -> PollResult:
        return await self.runtime.watchers[0].poll()

    async def deliver(self) -> None:
        for deliverer in self.runtime.deliverers:
            assert await deliverer.drain(10), f"sink {deliverer.sink_name} kept events pending"

    def stored(self) -> list[Event]:
        return self.runtime.store.events(limit=1_000_000)

    def sent(self) -> list[dict[str, Any]]:
        return read_events(self.events_file)

    def inject(self, faults: list[dict[str, Any]]) -> int:
        """Queue faults on the simulator; the number of failing answers they make."""
        with control(self.sim) as c:
            c.post("/faults", json=faults).raise_for_status()
        return sum(int(f["count"]) for f in faults)

    def ready(self) -> tuple[int, str]:
        """What /readyz answers: the status and the body."""
        assert self.runtime.listener is not None, "watching(..., serve_http=True)"
        with httpx.Client(timeout=10) as client:
            answer = client.get(f"{self.runtime.listener.url}/readyz")
        return answer.status_code, answer.text

    def pending_faults(self) -> list[dict[str, Any]]:
        with control(self.sim) as c:
            pending: list[dict[str, Any]] = c.get("/faults").json()
        return pending

    def rows(self) -> list[dict[str, Any]]:
        with control(self.sim) as c:
            rows: list[dict[str, Any]] = c.get("/resources").json()
        return rows

    def patch(self, rid: str, fields: dict[str, Any]) -> None:
        with control(self.sim) as c:
            c.patch(f"/resources/{rid.lstrip('/')}", json=fields).raise_for_status()


@asynccontextmanager
async def watching(
    sim: SimServer, config: Config, *, serve_http: bool = False
) -> AsyncIterator[Rig]:
    """`serve_http`: with the /metrics, /healthz, /readyz listener on a free port."""
    if serve_http:
        config = dataclasses.replace(config, http=HttpConfig(listen="127.0.0.1:0"))
    async with open_runtime(config, serve_http=serve_http) as runtime:
        options = config.sinks[0].options
        assert isinstance(options, LogOptions)
        yield Rig(sim, runtime, Path(options.path))
