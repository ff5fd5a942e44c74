"""Credentials go bad during a run: the ticket expires on the server, renewal and fresh
logins, a login refused for a while, a token refused then accepted again. A hiccup that
one re-login absorbs says nothing; a longer one is one outage. Client details:
tests/pve/test_client_auth.py."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from pvewatch.model import Event
from pvewatch.pipeline import ClusterWatcher
from pvewatch.pve.client import RELOGIN_AFTER_SECS, RENEW_AFTER_SECS, PveClient
from pvewatch.secret import Secret
from pvewatch.simulator import SimOptions
from pvewatch.simulator.auth import TICKET_LIFETIME_SECS
from pvewatch.simulator.server import SimServer
from pvewatch.store.sqlite import SqliteStore
from tests.e2e.harness import control
from tests.faults.figures import Figures
from tests.faults.rig import hand_watcher, pinned_cluster, status
from tests.simulator.support import FakeClock

USER = "watcher@pve"
PASSWORD = "canary-pw-7e1f0c5a-do-not-log"


@dataclass
class Watch:
    watcher: ClusterWatcher
    store: SqliteStore
    sim_clock: FakeClock
    client_clock: FakeClock

    def advance(self, secs: float, *, server: bool = True, client: bool = True) -> None:
        if server:
            self.sim_clock.advance(secs)
        if client:
            self.client_clock.advance(secs)

    def events(self) -> list[Event]:
        return self.store.events(limit=10_000)


@contextmanager
def _simulator(clock: FakeClock) -> Iterator[SimServer]:
    options = SimOptions(listen="127.0.0.1:0", guests=10, seed=7, user=USER, password=PASSWORD)
    with SimServer(options, clock=clock) as sim:
        yield sim


@asynccontextmanager
async def _watch(sim: SimServer, clock: FakeClock, tmp: Path) -> AsyncIterator[Watch]:
    cluster = pinned_cluster(
        "tickets",
        sim,
        token=None,
        username=USER,
        password=Secret(PASSWORD),
        source_failure_threshold=2,
    )
    client_clock = FakeClock(0.0)
    with SqliteStore(tmp / "state.db") as store:
        async with PveClient(cluster, clock=client_clock, min_interval_secs=0) as client:
            watcher = hand_watcher(cluster, client, store)
            yield Watch(watcher, store, clock, client_clock)


def _logins(sim: SimServer) -> int:
    with control(sim) as c:
        return int(c.get("/stats").json()["requests"].get("POST /api2/json/access/ticket", 0))


async def test_tickets_expire_renew_and_fail_without_a_false_event(
    tmp_path: Path, figures: Figures, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = FakeClock()
    with _simulator(clock) as sim:
        async with _watch(sim, clock, tmp_path) as w:
            assert (await w.watcher.poll()).ok  # logs in, records the baseline
            for _ in range(figures.scaled(2, 20)):
                # The server's clock runs ahead: it sees an expired ticket and says 401;
                # the client logs in again and the same poll succeeds.
                w.advance(TICKET_LIFETIME_SECS + 60, client=False)
                assert (await w.watcher.poll()).ok
                w.advance(RENEW_AFTER_SECS + 1)  # renewed with the ticket itself
                assert (await w.watcher.poll()).ok
                w.advance(RELOGIN_AFTER_SECS + 1)  # too old to renew: the password again
                assert (await w.watcher.poll()).ok
                # One 401 is absorbed by a re-login; a refused login fails one poll only.
                with control(sim) as c:
                    c.post("/faults", json=status(401, 1)).raise_for_status()
                    c.post("/faults", json={**status(401, 1), "path": "/access/ticket"})
                assert (await w.watcher.poll()).ok is False
                assert (await w.watcher.poll()).ok
                figures.add("faults_injected", 5)
                figures.add("polls", 5)
            assert w.events() == []
            logins = _logins(sim)
    assert logins >= 1 + 4 * figures.scaled(2, 20)
    assert PASSWORD not in caplog.text


async def test_a_login_refused_for_a_while_is_one_outage(tmp_path: Path, figures: Figures) -> None:
    clock = FakeClock()
    with _simulator(clock) as sim:
        async with _watch(sim, clock, tmp_path) as w:
            assert (await w.watcher.poll()).ok
            # The ticket expires while the password is refused (changed, then restored).
            w.advance(TICKET_LIFETIME_SECS + 60, client=False)
            with control(sim) as c:
                c.post("/faults", json={**status(401, 4), "path": "/access/ticket"})
            for _ in range(4):
                assert not (await w.watcher.poll()).ok
            assert (await w.watcher.poll()).ok
            events = w.events()
    assert [(e.type, e.details.get("error")) for e in events] == [
        ("source.unreachable", "auth"),
        ("source.recovered", "auth"),
    ]
    figures.add("outages")
    figures.add("faults_injected", 4)
    figures.add("polls", 6)
