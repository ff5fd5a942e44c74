"""Shared pieces of the end-to-end tests: a simulator on a real socket, a watcher config
against it, and helpers that wait on conditions with deadlines."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

from pvewatch.config.rules import RulesConfig, ShapeConfig
from pvewatch.config.types import (
    ClusterConfig,
    Config,
    HttpConfig,
    SinkConfig,
    StoreConfig,
    TlsConfig,
)
from pvewatch.lifecycle.reload import ConfigSource
from pvewatch.secret import Secret
from pvewatch.simulator import SimOptions
from pvewatch.simulator.server import SimServer
from pvewatch.sinks.log import LogOptions

TOKEN = "pvewatch@pve!e2e=5d0b8a52-0c44-4c1e-9a8b-7d6e5f4a3b2c"
T = TypeVar("T")


def wait_for(
    condition: Callable[[], T | None], *, timeout: float = 15.0, what: str = "condition"
) -> T:
    """Poll `condition` until it returns something truthy, or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@contextmanager
def simulator(**overrides: Any) -> Iterator[SimServer]:
    settings: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "nodes": 3,
        "guests": 10,
        "seed": 7,
        "tokens": (TOKEN,),
    }
    options = SimOptions(**(settings | overrides))
    with SimServer(options) as sim:
        yield sim


def control(sim: SimServer) -> httpx.Client:
    """A client for the simulator's /_sim/ control API."""
    return httpx.Client(base_url=f"{sim.url}/_sim", verify=False, timeout=10)  # noqa: S501


def watcher_config(
    sim: SimServer, tmp: Path, *, interval: float = 1.0, threshold: int = 3
) -> Config:
    assert sim.fingerprint is not None
    return Config(
        clusters=(
            ClusterConfig(
                name="e2e",
                endpoints=(sim.url,),
                token=Secret(TOKEN),
                tls=TlsConfig(fingerprints=(sim.fingerprint,)),
                interval_secs=interval,
                timeout_secs=2.0,
                source_failure_threshold=threshold,
            ),
        ),
        store=StoreConfig(path=tmp / "state.db"),
        http=HttpConfig(listen="127.0.0.1:0"),  # any free port: tests never collide
        # Every transition at once: holds and flapping have end-to-end tests of their own.
        rules=RulesConfig(shape=ShapeConfig(hold_secs={}, flapping=None)),
        sinks=(
            SinkConfig("events", "log", LogOptions(format="json", path=str(tmp / "events.jsonl"))),
        ),
    )


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def polls_served(sim: SimServer) -> int:
    with control(sim) as c:
        stats = c.get("/stats").json()
    return sum(n for path, n in stats["paths"].items() if path.endswith("/cluster/resources"))


class Watching:
    """A running in-process watcher: `reload()` is a SIGHUP; `readies` counts its READY=1."""

    def __init__(self) -> None:
        self.readies = 0
        self.loop: Any = None
        self.stop: Any = None
        self.reload_event: Any = None

    def ready(self) -> None:
        self.readies += 1

    def reload(self) -> None:
        self.loop.call_soon_threadsafe(self.reload_event.set)


@contextmanager
def running_watcher(
    config: Config,
    *,
    on_listening: Callable[[str], None] = lambda url: None,
    source: ConfigSource | None = None,
) -> Iterator[Watching]:
    """`pvewatch run` in-process, on its own event loop in a thread; stopped like SIGTERM.
    `on_listening` gets the URL of the /metrics listener; `source` is what a reload reads."""
    import asyncio
    import threading

    from pvewatch.lifecycle import daemon

    started = threading.Event()
    state: dict[str, Any] = {}
    watching = Watching()

    def ready() -> None:
        watching.ready()
        started.set()

    async def main() -> int:
        stop, reload = asyncio.Event(), asyncio.Event()
        state["loop"] = watching.loop = asyncio.get_running_loop()
        state["stop"] = watching.stop = stop
        watching.reload_event = reload
        return await daemon.run(
            config,
            source=source,
            stop=stop,
            reload=reload,
            on_ready=ready,
            on_listening=on_listening,
        )

    def target() -> None:
        try:
            state["rc"] = asyncio.run(main())
        except BaseException as e:  # surfaced to the test below
            state["error"] = e
            started.set()

    thread = threading.Thread(target=target, name="pvewatch-run", daemon=True)
    thread.start()
    wait_for(started.is_set, what="the watcher to start")
    if "error" in state:
        raise state["error"]
    try:
        yield watching
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(timeout=30)
        assert not thread.is_alive(), "the watcher did not stop within 30 s"
        if "error" in state:
            raise state["error"]
        assert state.get("rc") == 0


def baseline_recorded(config: Config) -> bool:
    from pvewatch.store.sqlite import SqliteStore

    if not config.store.path.exists():
        return False
    with SqliteStore(config.store.path) as store:
        snapshot, _ = store.load(config.clusters[0].name)
    return snapshot is not None
