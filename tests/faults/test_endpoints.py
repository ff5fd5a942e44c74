"""Endpoints die: one of a cluster's endpoints dead or silent (failover, no event), all
of them dead (one outage), and one coming back with a change made meanwhile (reported
once). Socket-level failover of the client alone: tests/pve/test_client_sockets.py."""

from __future__ import annotations

import dataclasses
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pvewatch.config.types import ClusterConfig, Config, SinkConfig, StoreConfig
from pvewatch.secret import Secret
from pvewatch.simulator import SimOptions
from pvewatch.simulator.server import SimServer
from pvewatch.sinks.log import LogOptions
from tests.e2e.harness import TOKEN, simulator
from tests.faults.figures import Figures
from tests.faults.rig import TIMEOUT_SECS, watching

# Plain HTTP, so that a simulator restarted on the same port is the same endpoint (a new
# one would have a new certificate). TLS itself: test_tls.py.
PLAIN = SimOptions(listen="127.0.0.1:0", tls=False, nodes=3, guests=12, seed=7, tokens=(TOKEN,))


def _config(tmp: Path, *endpoints: str) -> Config:
    cluster = ClusterConfig(
        name="multi",
        endpoints=endpoints,
        token=Secret(TOKEN),
        timeout_secs=TIMEOUT_SECS,
        source_failure_threshold=2,
    )
    log = LogOptions(format="json", path=str(tmp / "events.jsonl"))
    return Config(
        clusters=(cluster,),
        store=StoreConfig(path=tmp / "state.db"),
        sinks=(SinkConfig("events", "log", log),),
    )


@contextmanager
def _silent_endpoint() -> Iterator[str]:
    """Accepts TCP connections (the kernel does) and never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"https://127.0.0.1:{sock.getsockname()[1]}"


def _port(sim: SimServer) -> int:
    return int(sim.url.rsplit(":", 1)[1])


def _stopped_guest(sim: SimServer) -> str:
    rows = sim.cluster.resources("vm", sim.cluster.clock())
    return str(next(r["id"] for r in rows if r["status"] == "stopped"))


async def test_endpoints_dying_one_by_one_and_one_coming_back(
    tmp_path: Path, figures: Figures
) -> None:
    first, second = SimServer(PLAIN).start(), SimServer(PLAIN).start()
    port = _port(first)
    revived: SimServer | None = None
    try:
        async with watching(first, _config(tmp_path, first.url, second.url)) as rig:
            assert (await rig.poll()).ok  # the baseline, from the first endpoint
            first.stop()
            for _ in range(figures.scaled(3, 30)):  # the second endpoint takes over
                result = await rig.poll()
                assert result.ok, result.error
                assert result.events == []
            second.stop()  # now both are dead: one outage
            for _ in range(figures.scaled(3, 30)):
                assert not (await rig.poll()).ok
            figures.add("faults_injected", 2 + figures.scaled(3, 30))
            revived = SimServer(dataclasses.replace(PLAIN, listen=f"127.0.0.1:{port}")).start()
            guest = _stopped_guest(revived)
            with revived.cluster.lock:
                revived.cluster.patch(guest, {"status": "running"}, revived.cluster.clock())
            assert (await rig.poll()).ok
            assert (await rig.poll()).events == []
            events = [(e.type, e.resource.id if e.resource else None) for e in rig.stored()]
    finally:
        for sim in (first, second, revived):
            if sim is not None:
                sim.stop()
    assert events == [
        ("source.unreachable", None),
        ("source.recovered", None),
        ("guest.started", guest),
    ]
    figures.add("outages")
    figures.add("events_checked", len(events))
    figures.add("polls", 3 + 2 * figures.scaled(3, 30))


async def test_a_silent_endpoint_costs_one_timeout_then_is_skipped(
    tmp_path: Path, figures: Figures, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with simulator() as sim, _silent_endpoint() as silent:
        config = _config(tmp_path, silent, sim.url)
        assert sim.fingerprint is not None
        tls = dataclasses.replace(config.clusters[0].tls, fingerprints=(sim.fingerprint,))
        cluster = dataclasses.replace(config.clusters[0], tls=tls)
        async with watching(sim, dataclasses.replace(config, clusters=(cluster,))) as rig:
            for _ in range(figures.scaled(4, 40)):
                result = await rig.poll()
                assert result.ok, result.error
            assert rig.stored() == []
    timeouts = [r for r in caplog.records if "timed out" in r.getMessage()]
    assert len(timeouts) == 1, "the silent endpoint was tried again after failing over"
    assert silent in timeouts[0].getMessage()
    figures.add("faults_injected")
    figures.add("polls", figures.scaled(4, 40))
