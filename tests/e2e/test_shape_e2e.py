"""Shaping end to end: `pvewatch run` against the simulator, two sinks, real sockets.

A node outage is one notification per sink and one resolving `node.online`; a flapping
guest is one `guest.flapping` and one `guest.flapping_ended`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from pvewatch.config.rules import RulesConfig
from pvewatch.config.shape import FlappingConfig, ShapeConfig
from pvewatch.config.types import Config, SinkConfig
from pvewatch.simulator.server import SimServer
from pvewatch.sinks.log import LogOptions
from tests.e2e.harness import (
    baseline_recorded,
    control,
    polls_served,
    read_events,
    running_watcher,
    simulator,
    wait_for,
    watcher_config,
)

SINKS = ("oncall", "archive")
GUESTS = ("qemu", "lxc")


def _config(sim: SimServer, tmp: Path, shape: ShapeConfig) -> Config:
    config = watcher_config(sim, tmp, interval=0.3)
    sinks = tuple(
        SinkConfig(name, "log", LogOptions(format="json", path=str(tmp / f"{name}.jsonl")))
        for name in SINKS
    )
    return dataclasses.replace(config, sinks=sinks, rules=RulesConfig(shape=shape))


def _sent(tmp: Path, sink: str) -> list[dict[str, Any]]:
    return read_events(tmp / f"{sink}.jsonl")


def _types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def _wait_in_every_sink(tmp: Path, type_: str) -> None:
    for sink in SINKS:
        wait_for(lambda: type_ in _types(_sent(tmp, sink)), what=f"{type_} in {sink}")  # noqa: B023


def _patch(sim: SimServer, rid: str, fields: dict[str, Any]) -> None:
    with control(sim) as c:
        c.patch(f"/resources/{rid}", json=fields).raise_for_status()


def _polls(sim: SimServer, count: int) -> None:
    """Wait until `count` more polls have been answered (so a change has been seen)."""
    served = polls_served(sim)
    wait_for(lambda: polls_served(sim) >= served + count, what=f"{count} more polls")


def _twenty_guests_on(sim: SimServer, node: str) -> list[str]:
    """Move guests so that exactly 20 are on `node`; their ids."""
    with control(sim) as c:
        rows = c.get("/resources").json()
    elsewhere = next(r["node"] for r in rows if r["type"] == "node" and r["node"] != node)
    guests = sorted((r for r in rows if r["type"] in GUESTS), key=lambda r: r["vmid"])
    for i, row in enumerate(guests):
        want = node if i < 20 else elsewhere
        if row["node"] != want:
            _patch(sim, row["id"], {"node": want})
    return [r["id"] for r in guests[:20]]


def test_node_offline_with_20_guests_is_one_event_per_sink_then_one_resolving_online(
    tmp_path: Path,
) -> None:
    shape = ShapeConfig(hold_secs={"node.offline": 1.0}, flapping=None)
    with simulator(guests=26, offline_expiry_secs=1.0) as sim:
        on_node = _twenty_guests_on(sim, "pve2")
        config = _config(sim, tmp_path, shape)
        with running_watcher(config):
            wait_for(lambda: baseline_recorded(config), what="the baseline")
            _patch(sim, "node/pve2", {"status": "offline"})
            _wait_in_every_sink(tmp_path, "node.offline")
            _polls(sim, 8)  # the guests' rows expire to `unknown` meanwhile (1 s)
            _patch(sim, "node/pve2", {"status": "online"})
            _wait_in_every_sink(tmp_path, "node.online")
            _polls(sim, 4)
    for sink in SINKS:
        offline, online = _sent(tmp_path, sink)  # and nothing about the guests
        assert (offline["type"], online["type"]) == ("node.offline", "node.online")
        assert sorted(g["id"] for g in offline["details"]["guests"]) == sorted(on_node)
        assert offline["details"]["storages"], "the node's storages are listed too"
        assert "(20 guests" in offline["summary"]
        assert offline["condition"] == "node.offline:node/pve2"
        assert online["resolves"] == offline["id"]


def test_a_guest_flapping_ten_times_is_one_flapping_event_and_one_summary(
    tmp_path: Path,
) -> None:
    flapping = FlappingConfig(transitions=4, window_secs=120, stable_secs=2)
    shape = ShapeConfig(hold_secs={"guest.stopped": 1.0}, flapping=flapping)
    with simulator() as sim:
        _patch(sim, "qemu/100", {"status": "running"})
        config = _config(sim, tmp_path, shape)
        with running_watcher(config):
            wait_for(lambda: baseline_recorded(config), what="the baseline")
            for i in range(10):
                _patch(sim, "qemu/100", {"status": "stopped" if i % 2 == 0 else "running"})
                _polls(sim, 2)
            _wait_in_every_sink(tmp_path, "guest.flapping_ended")
            _polls(sim, 4)
    for sink in SINKS:
        events = [e for e in _sent(tmp_path, sink) if e["resource"]["id"] == "qemu/100"]
        types = _types(events)
        assert types.count("guest.flapping") == 1
        assert types.count("guest.flapping_ended") == 1
        # Before it was flapping, at most the first few changes (each held for 1 s), and
        # after it, at most the one that makes what the sinks last heard true again.
        assert len(types) <= 2 + flapping.transitions + 1
        began = next(e for e in events if e["type"] == "guest.flapping")
        ended = next(e for e in events if e["type"] == "guest.flapping_ended")
        assert ended["details"]["transitions"] == 10
        assert ended["details"]["status"] == "running"
        assert ended["resolves"] == began["id"]
