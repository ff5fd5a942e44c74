"""A health check across a failover: two replicas of `pvewatch run` share a PostgreSQL
store; the leader reports a failed disk and is killed (-9); the heir goes on from the
check's stored memory: the disk is not reported again, and its recovery resolves the
event the first leader sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from pvewatch.config.types import PostgresConfig
from pvewatch.model import Event
from pvewatch.store.postgres import PostgresStore
from tests.e2e.ha import replicas, status, stored, write_config
from tests.e2e.harness import control, simulator, wait_for
from tests.e2e.receiver import receiver
from tests.pg import fresh_database


@pytest.fixture
def pg() -> Iterator[PostgresConfig]:
    with fresh_database() as config:
        yield config


def last_run(pg: PostgresConfig) -> datetime | None:
    with PostgresStore(pg) as store:
        found = {s.name: s for s in store.check_states("ha1")}
    return found["disks"].last_run if "disks" in found else None


def of_type(pg: PostgresConfig, type_: str) -> list[Event]:
    return [e for e in stored(pg) if e.type == type_]


def test_a_check_condition_is_not_repeated_after_a_failover(
    tmp_path: Path, pg: PostgresConfig
) -> None:
    with simulator(guests=6, seed=10) as sim, receiver() as hook, control(sim) as c:
        config = write_config(tmp_path, sim, pg, hook, clusters=1)
        doc = json.loads(config.read_text())
        doc["clusters"][0]["checks"] = {
            name: False for name in ("ha", "ceph", "replication", "qdevice", "certificates")
        } | {"disks": {"interval_secs": 1}, "backups": False}
        config.write_text(json.dumps(doc))
        with replicas(config, tmp_path) as group:
            first, second = group.start(), group.start()
            wait_for(lambda: last_run(pg), timeout=30, what="a run of the disks check")
            c.put("/disks/pve1/sda", json={"health": "FAILED!"}).raise_for_status()
            [failed] = wait_for(lambda: of_type(pg, "disk.failed"), timeout=30, what="it")
            leader = status(pg)["ha1"].leader
            victim = first if first.id == leader else second
            heir = second if victim is first else first
            victim.proc.kill()
            victim.proc.wait()
            wait_for(lambda: status(pg)["ha1"].leader == heir.id, timeout=30, what="takeover")
            for what in ("the heir's first run", "its second run"):
                ran = last_run(pg)
                wait_for(lambda: last_run(pg) != ran, timeout=30, what=what)  # noqa: B023
            assert [e.id for e in of_type(pg, "disk.failed")] == [failed.id]
            c.put("/disks/pve1/sda", json={"health": "PASSED"}).raise_for_status()
            [healthy] = wait_for(lambda: of_type(pg, "disk.healthy"), timeout=30, what="end")
        assert healthy.resolves == failed.id
        assert healthy.condition == failed.condition == "disk.failed:disk/pve1/sda"
