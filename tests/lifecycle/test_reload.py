"""Reload: the requests (coalesced, a stop wins), re-reading the config (every problem on
its own line, no secret), and `pvewatch run` in-process on the simulator: a reload asked
for during a reload, a new config that cannot start, and the listener kept, reconfigured
or rebound. The signals and systemd, on real processes: tests/e2e/test_lifecycle.py."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from pvewatch.config.load import load_config
from pvewatch.errors import ConfigError
from pvewatch.lifecycle.reload import ConfigSource, Requests, reread
from pvewatch.simulator.server import SimServer
from pvewatch.sinks.table import SINK_TYPES
from tests.config.test_web import HASH
from tests.e2e.harness import TOKEN, polls_served, running_watcher, simulator, wait_for
from tests.faults.support import cluster_entry, write_config
from tests.prom import parse, select

SECRET_PART = TOKEN.split("=", 1)[1]
USER = ("prometheus", "s3cret")  # tests.config.test_web.HASH


# --- the requests ----------------------------------------------------------------------


async def test_reloads_asked_for_together_are_done_once() -> None:
    requests = Requests()
    for _ in range(3):
        requests.reload.set()
    assert await requests.next() == "reload"
    waiting = asyncio.create_task(requests.next())
    await asyncio.sleep(0.05)
    assert not waiting.done()  # the three made one
    requests.stop.set()
    assert await asyncio.wait_for(waiting, 1) == "stop"


async def test_a_stop_wins_over_a_pending_reload() -> None:
    requests = Requests()
    requests.reload.set()
    requests.stop.set()
    assert await requests.next() == "stop"
    assert await requests.next() == "stop"  # and stays


# --- reading the config again ------------------------------------------------------------


def config_file(tmp: Path, sim: SimServer | None = None, **more: Any) -> Path:
    offline: dict[str, object] = {"name": "e2e", "endpoints": ["https://127.0.0.1:1"]}
    offline["token"] = TOKEN
    clusters = [cluster_entry("e2e", sim, token=TOKEN) if sim is not None else offline]
    settings: dict[str, Any] = {"http": {"listen": "127.0.0.1:0"}} | more
    return write_config(tmp, clusters, {}, **settings)


def source_of(path: Path) -> ConfigSource:
    return ConfigSource(load=lambda: load_config(path, {}, sink_types=SINK_TYPES))


async def test_reread_logs_each_problem_on_one_error_line_without_secrets(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "watch.yaml"
    bad = {"name": "prod", "endpoints": ["https://pve1:8006"], "token": TOKEN}
    path.write_text(json.dumps({"clusters": [bad | {"interval_secs": "soon"}], "bogus": 1}))
    with pytest.raises(ConfigError) as expected:
        load_config(path, {}, sink_types=SINK_TYPES)
    log = logging.getLogger("test.reload")
    with caplog.at_level(logging.ERROR):
        assert await reread(source_of(path), log) is None
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(expected.value.problems) == 2
    for problem in expected.value.problems:
        assert f"reload rejected: {problem}" in lines
    assert any("clusters[0].interval_secs" in line for line in lines), lines
    assert not any(SECRET_PART in line for line in lines)


async def test_reread_returns_the_config_the_file_holds_now(tmp_path: Path) -> None:
    path = config_file(tmp_path, store={"path": str(tmp_path / "a.db")})
    source = source_of(path)
    log = logging.getLogger("test.reload")
    assert (await reread(source, log)) == load_config(path, {}, sink_types=SINK_TYPES)
    config_file(tmp_path, store={"path": str(tmp_path / "b.db")})
    new = await reread(source, log)
    assert new is not None
    assert new.store.path == tmp_path / "b.db"


# --- pvewatch run, in-process ---------------------------------------------------------------


def scrape(url: str, auth: tuple[str, str] | None = None) -> httpx.Response:
    with httpx.Client(timeout=10) as client:
        return client.get(f"{url}/metrics", auth=auth)


def gauge(url: str, name: str, auth: tuple[str, str] | None = None) -> float | None:
    """The value of the first sample of `name` (labels or not); None: no sample."""
    found = select(parse(scrape(url, auth).text), name)
    return found[0].value if found else None


def test_a_reload_asked_for_during_a_reload_is_done_after_it(tmp_path: Path) -> None:
    with simulator() as sim:
        path = config_file(tmp_path, sim)
        config = load_config(path, {}, sink_types=SINK_TYPES)
        release, calls = threading.Event(), []

        def slow_load() -> Any:
            calls.append(1)
            assert release.wait(15), "the test never released the load"
            return load_config(path, {}, sink_types=SINK_TYPES)

        with running_watcher(config, source=ConfigSource(load=slow_load)) as watching:
            watching.reload()
            wait_for(lambda: calls, what="the reload to read the config")
            for _ in range(3):  # during the reload: queued, and made one
                watching.reload()
            release.set()
            wait_for(lambda: watching.readies == 3, what="two reloads applied")
            wait_for(lambda: polls_served(sim) >= 2, what="polls after the reloads")
        assert len(calls) == 2


def test_a_config_that_cannot_start_leaves_the_previous_one_running(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    urls: list[str] = []
    (tmp_path / "not-a-dir").write_text("")
    with simulator() as sim:
        path = config_file(tmp_path, sim)
        with running_watcher(
            load_config(path, {}, sink_types=SINK_TYPES),
            source=source_of(path),
            on_listening=urls.append,
        ) as w:
            wait_for(lambda: gauge(urls[-1], "pvewatch_source_up") == 1.0, what="a poll")
            # Valid, but its store cannot be created: the old config starts again.
            config_file(tmp_path, sim, store={"path": str(tmp_path / "not-a-dir" / "state.db")})
            w.reload()
            wait_for(lambda: w.readies == 2, what="the reload to end")
            served = polls_served(sim)
            wait_for(lambda: polls_served(sim) >= served + 2, what="polls by the old config")
            assert gauge(urls[-1], "pvewatch_config_last_reload_successful") == 0.0
    assert (tmp_path / "state.db").exists()
    assert any(
        "reload failed, going back to the previous config" in r.message for r in caplog.records
    )


def test_the_listener_is_kept_reconfigured_or_rebound(tmp_path: Path) -> None:
    urls: list[str] = []
    with simulator() as sim, socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        path = config_file(tmp_path, sim)
        with running_watcher(
            load_config(path, {}, sink_types=SINK_TYPES),
            source=source_of(path),
            on_listening=urls.append,
        ) as w:
            first = urls[-1]
            started = gauge(first, "pvewatch_config_last_reload_success_timestamp_seconds")
            assert started is not None
            # The same address (port 0 included): the same socket, with the new users.
            same = {"listen": "127.0.0.1:0", "basic_auth_users": {"prometheus": HASH}}
            config_file(tmp_path, sim, http=same)
            w.reload()
            wait_for(lambda: w.readies == 2, what="the first reload")
            assert urls == [first]
            assert scrape(first).status_code == 401
            assert scrape(first, USER).status_code == 200
            # An address in use: rejected, and the running listener keeps serving.
            config_file(tmp_path, sim, http={"listen": f"127.0.0.1:{busy.getsockname()[1]}"})
            w.reload()
            wait_for(lambda: w.readies == 3, what="the rejected reload")
            assert urls == [first]
            assert gauge(first, "pvewatch_config_last_reload_successful", USER) == 0.0
            # Another address: bound, and the old one closed.
            config_file(tmp_path, sim, http={"listen": "127.0.0.2:0"})  # loopback too
            w.reload()
            wait_for(lambda: w.readies == 4, what="the third reload")
            assert len(urls) == 2
            assert urls[-1] != first
            assert gauge(urls[-1], "pvewatch_config_last_reload_successful") == 1.0
            applied = gauge(urls[-1], "pvewatch_config_last_reload_success_timestamp_seconds")
            assert applied is not None
            assert applied >= started
            with pytest.raises(httpx.ConnectError):
                scrape(first)
