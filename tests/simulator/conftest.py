from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import httpx
import pytest

from pvewatch.simulator import SimOptions
from pvewatch.simulator.server import SimServer
from tests.simulator.support import TOKEN, TOKEN_HEADER, FakeClock

BASE = SimOptions(listen="127.0.0.1:0", tls=False, tokens=(TOKEN,), nodes=3, guests=12)

SimFactory = Callable[..., SimServer]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_sim(clock: FakeClock) -> Iterator[SimFactory]:
    """Starts simulators on 127.0.0.1:0 with the fake clock; stops them after the test."""
    started: list[SimServer] = []

    def make(**changes: object) -> SimServer:
        options = dataclasses.replace(BASE, **changes)  # type: ignore[arg-type]
        sim = SimServer(options, clock=clock).start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


@pytest.fixture
def sim(make_sim: SimFactory) -> SimServer:
    return make_sim()


@pytest.fixture
def api(sim: SimServer) -> Iterator[httpx.Client]:
    """An API client with the test token, on the default simulator."""
    with httpx.Client(base_url=sim.url + "/api2/json", headers=TOKEN_HEADER) as client:
        yield client


@pytest.fixture
def ctl(sim: SimServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url + "/_sim") as client:
        yield client
