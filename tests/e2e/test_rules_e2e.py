"""The rules end to end: `pvewatch run` against the simulator, changes made through its
control API with the PVE tasks that explain them (or none), events read from the log sink
(what is sent) and from the store (what is recorded)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pvewatch.config.rules import ExpectRule, RulesConfig
from pvewatch.config.shape import ShapeConfig
from pvewatch.config.types import Config
from pvewatch.model import Event
from pvewatch.silence import parse_match
from pvewatch.simulator.server import SimServer
from pvewatch.store.sqlite import SqliteStore
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

# VM 100 runs on pve3 and VM 101 on pve2 in the simulator's seed-7 layout.
EXPECT = (ExpectRule(vmids=(100, 101)),)
HOLD_SECS = 2.0


def rules_config(sim: SimServer, tmp: Path, hold: dict[str, float] | None = None) -> Config:
    config = watcher_config(sim, tmp, interval=0.5)
    shape = ShapeConfig(hold_secs=hold or {}, flapping=None)
    return dataclasses.replace(config, rules=RulesConfig(expect=EXPECT, shape=shape))


def sent(tmp: Path, resource_id: str | None = None) -> list[dict[str, Any]]:
    """What reached the log sink (about one resource)."""
    events = read_events(tmp / "events.jsonl")
    if resource_id is None:
        return events
    return [e for e in events if (e["resource"] or {}).get("id") == resource_id]


def recorded(config: Config, type_pattern: str = "*") -> list[Event]:
    with SqliteStore(config.store.path) as store:
        return store.events(type_pattern=type_pattern)


def sim_call(sim: SimServer, method: str, path: str, body: object) -> dict[str, Any]:
    with control(sim) as c:
        answer = c.request(method, path, json=body)
        answer.raise_for_status()
        result: dict[str, Any] = answer.json() or {}
        return result


def more_polls(sim: SimServer, count: int) -> None:
    served = polls_served(sim)
    wait_for(lambda: polls_served(sim) >= served + count, what=f"{count} more polls")


@contextmanager
def watching(config: Config) -> Iterator[None]:
    with running_watcher(config):
        wait_for(lambda: baseline_recorded(config), what="the baseline")
        yield


def test_a_user_stop_is_info_and_an_unexplained_stop_is_critical(tmp_path: Path) -> None:
    with simulator() as sim:
        sim_call(sim, "PATCH", "/resources/qemu/101", {"status": "running"})
        config = rules_config(sim, tmp_path)
        with watching(config):
            sim_call(sim, "DELETE", "/stats", None)
            task = {"type": "qmstop", "id": "100", "node": "pve3", "user": "alice@pve"}
            upid = sim_call(sim, "POST", "/tasks", task | {"status": "OK"})["upid"]
            sim_call(sim, "PATCH", "/resources/qemu/100", {"status": "stopped"})
            wait_for(lambda: sent(tmp_path, "qemu/100"), what="the stop of VM 100")
            sim_call(sim, "PATCH", "/resources/qemu/101", {"status": "stopped"})
            wait_for(lambda: sent(tmp_path, "qemu/101"), what="the stop of VM 101")
            more_polls(sim, 3)
        with control(sim) as c:
            stats = c.get("/stats").json()
    (by_alice,) = sent(tmp_path, "qemu/100")
    assert (by_alice["type"], by_alice["severity"]) == ("guest.stopped", "info")
    assert by_alice["cause"] == {"kind": "user", "task": upid, "user": "alice@pve"}
    assert by_alice["summary"] == "VM 100 (mon00) on pve3 stopped by alice@pve"
    (crashed,) = sent(tmp_path, "qemu/101")
    assert (crashed["type"], crashed["severity"]) == ("guest.stopped", "critical")
    assert crashed["cause"] == {"kind": "unplanned", "task": None, "user": None}
    assert crashed["summary"] == "VM 101 (app01) on pve2 stopped unexpectedly"
    # At most three requests per poll: resources, status, tasks.
    polls = stats["paths"]["/api2/json/cluster/resources"]
    assert set(stats["paths"]) <= {
        "/api2/json/cluster/resources",
        "/api2/json/cluster/status",
        "/api2/json/cluster/tasks",
    }
    assert stats["paths"]["/api2/json/cluster/tasks"] <= polls


def test_a_stop_mode_backup_back_within_the_hold_sends_nothing(tmp_path: Path) -> None:
    with simulator() as sim:
        config = rules_config(sim, tmp_path, hold={"guest.stopped": HOLD_SECS})
        with watching(config):
            task = {"type": "vzdump", "id": "100", "node": "pve3", "user": "root@pam"}
            upid = sim_call(sim, "POST", "/tasks", task)["upid"]
            sim_call(sim, "PATCH", "/resources/qemu/100", {"status": "stopped", "lock": "backup"})
            wait_for(lambda: recorded(config, "guest.stopped"), what="the held stop")
            sim_call(sim, "PATCH", "/resources/qemu/100", {"status": "running", "lock": None})
            sim_call(sim, "POST", "/tasks", {"upid": upid, "status": "OK"})
            wait_for(lambda: recorded(config, "guest.started"), what="the start")
            # Past the hold, a few polls: still nothing sent.
            deadline = datetime.now(UTC) + timedelta(seconds=HOLD_SECS)
            wait_for(lambda: datetime.now(UTC) > deadline, what="the hold to pass")
            more_polls(sim, 2)
        (stop,) = recorded(config, "guest.stopped")
    assert stop.cause is not None
    assert (stop.cause.kind, stop.cause.task) == ("backup", upid)
    assert stop.summary == "VM 100 (mon00) on pve3 stopped by a backup (vzdump)"
    assert stop.suppressed == "held"
    assert [e["type"] for e in sent(tmp_path, "qemu/100") if e["type"].startswith("guest.")] == [
        "guest.lock_changed",
        "guest.lock_changed",
    ]


def test_a_failed_backup_is_one_task_failed_with_its_log_not_repeated_after_restart(
    tmp_path: Path,
) -> None:
    with simulator() as sim:
        old = {"type": "vzdump", "id": "104", "node": "pve1", "status": "job errors"}
        sim_call(sim, "POST", "/tasks", old)  # history: before the baseline
        config = rules_config(sim, tmp_path)
        log = ["INFO: starting new backup job: vzdump 100 --storage nfs-backup"]
        log += [f"INFO: status: {i}%" for i in range(0, 100, 5)]
        log += ["ERROR: backup write data failed: Input/output error"]
        with watching(config):
            failed = {"type": "vzdump", "id": "100", "node": "pve3", "log": log}
            upid = sim_call(sim, "POST", "/tasks", failed | {"status": "job errors"})["upid"]
            wait_for(lambda: sent(tmp_path), what="task.failed")
            more_polls(sim, 2)
        with watching(config):
            more_polls(sim, 3)
        stored = recorded(config, "task.*")
    (event,) = sent(tmp_path)
    assert (event["type"], event["severity"]) == ("task.failed", "warning")
    assert event["summary"] == "backup (vzdump) of VM 100 (mon00) on pve3 failed: job errors"
    assert event["details"]["upid"] == upid
    assert event["details"]["log_tail"] == [*log, "TASK ERROR: job errors"][-20:]
    assert [e.id for e in stored] == [event["id"]]


def test_quorum_lost_and_regained(tmp_path: Path) -> None:
    with simulator() as sim:
        config = rules_config(sim, tmp_path)
        with watching(config):
            for name in ("pve2", "pve3"):
                sim_call(sim, "PATCH", f"/resources/node/{name}", {"status": "offline"})
            wait_for(lambda: recorded(config, "cluster.quorum_lost"), what="quorum lost")
            for name in ("pve2", "pve3"):
                sim_call(sim, "PATCH", f"/resources/node/{name}", {"status": "online"})
            wait_for(lambda: recorded(config, "cluster.quorum_regained"), what="quorum regained")
            more_polls(sim, 2)
    quorum = [e for e in sent(tmp_path) if e["type"].startswith("cluster.")]
    assert [(e["type"], e["severity"]) for e in quorum] == [
        ("cluster.quorum_lost", "critical"),
        ("cluster.quorum_regained", "info"),
    ]
    assert quorum[0]["summary"] == "cluster e2e lost quorum (1 of 3 nodes online)"


@pytest.mark.parametrize("nodes", [2, 3])
def test_a_node_with_a_silent_pvestatd_keeps_the_quorum(tmp_path: Path, nodes: int) -> None:
    """pve2's pvestatd dies: its status turns `unknown`, but it is still a corosync member
    (`online: 1` in /cluster/status), so the cluster keeps its quorum, even on 2 nodes.
    Only when pve2 leaves corosync too does a 2-node cluster lose it."""
    with simulator(nodes=nodes) as sim:
        config = rules_config(sim, tmp_path)
        with watching(config):
            sim_call(sim, "PATCH", "/resources/node/pve2", {"status": "unknown"})
            wait_for(lambda: recorded(config, "node.status_changed"), what="pve2 unknown")
            more_polls(sim, 3)
            assert recorded(config, "cluster.*") == []
            sim_call(sim, "PATCH", "/resources/node/pve2", {"corosync": "offline"})
            wait_for(lambda: recorded(config, "node.offline"), what="pve2 offline")
            more_polls(sim, 3)
    cluster = [(e.type, e.summary) for e in recorded(config, "cluster.*")]
    if nodes == 2:
        assert cluster == [("cluster.quorum_lost", "cluster e2e lost quorum (1 of 2 nodes online)")]
    else:
        assert cluster == []
    [unknown] = recorded(config, "node.status_changed")
    assert unknown.summary == "node pve2 status changed from online to unknown"


def test_a_silence_keeps_matching_events_from_the_sinks(tmp_path: Path) -> None:
    with simulator() as sim:
        config = rules_config(sim, tmp_path)
        with watching(config):
            now = datetime.now(UTC)
            with SqliteStore(config.store.path) as store:
                store.add_silence(
                    parse_match("cluster=e2e,resource=qemu/100,type=guest.*"),
                    starts_at=now - timedelta(seconds=1),
                    ends_at=now + timedelta(hours=2),
                    comment="disk swap",
                    created_by="alice",
                )
            sim_call(sim, "PATCH", "/resources/qemu/100", {"status": "stopped"})
            sim_call(sim, "PATCH", "/resources/qemu/103", {"status": "stopped"})
            wait_for(lambda: sent(tmp_path, "qemu/103"), what="the stop of VM 103")
            wait_for(lambda: len(recorded(config, "guest.stopped")) == 2, what="both stops")
        stops = {e.resource.id: e for e in recorded(config, "guest.stopped") if e.resource}
    assert stops["qemu/100"].suppressed == "silenced"
    assert stops["qemu/100"].details["silence"] == "1"
    assert stops["qemu/103"].suppressed is None
    assert sent(tmp_path, "qemu/100") == []
