"""The health checks end to end: the real daemon against the simulator on real sockets.

For each row of the event table (issue 13): the condition is reported once after its
hold, not while the check cannot read it, not again after a restart, and resolved once;
per-node conditions stay silent while their node is offline. A cluster with nothing set
up produces no event and no warning."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from pvewatch.config.checks import CHECKS, CheckConfig
from pvewatch.config.rules import RulesConfig, ShapeConfig
from pvewatch.config.types import Config
from pvewatch.simulator.server import SimServer
from pvewatch.store.base import CheckState
from pvewatch.store.sqlite import SqliteStore
from tests.e2e.harness import (
    control,
    read_events,
    running_watcher,
    simulator,
    wait_for,
    watcher_config,
)

HOLD = 1.5  # seconds every problem of these tests must last before it is sent
DAY = 86_400


def checks_config(sim: SimServer, tmp: Path, names: tuple[str, ...], hold: str) -> Config:
    config = watcher_config(sim, tmp, interval=1.0)
    cluster = dataclasses.replace(
        config.clusters[0], checks=tuple(CheckConfig(n, 0.5) for n in names)
    )
    rules = RulesConfig(shape=ShapeConfig(hold_secs={hold: HOLD}, flapping=None))
    return dataclasses.replace(config, clusters=(cluster,), rules=rules)


def states(config: Config) -> dict[str, CheckState]:
    if not config.store.path.exists():
        return {}
    with SqliteStore(config.store.path) as store:
        return {s.name: s for s in store.check_states("e2e")}


def runs_after(config: Config, name: str, n: int = 2) -> None:
    """Wait until check `name` has run `n` more times (its last_run moved n times)."""
    seen: list[Any] = []

    def moved() -> bool:
        state = states(config).get(name)
        at = state.last_run if state else None
        if at is not None and (not seen or seen[-1] != at):
            seen.append(at)
        return len(seen) > n

    wait_for(moved, timeout=20, what=f"{n} runs of check {name}")


def of_type(tmp: Path, *types: str) -> list[dict[str, Any]]:
    return [e for e in read_events(tmp / "events.jsonl") if e["type"] in types]


@dataclass(frozen=True)
class Row:
    check: str
    bad_type: str
    good_type: str
    resource: str
    setup: Callable[[httpx.Client], None]
    bad: Callable[[httpx.Client], None]
    good: Callable[[httpx.Client], None]
    unreadable: str  # a path whose error makes the check unable to read
    node: str | None = None  # per-node: silent while this node is offline


def _put(path: str, body: Any) -> Callable[[httpx.Client], None]:
    def run(c: httpx.Client) -> None:
        answer = c.put(path, json=body() if callable(body) else body)
        assert answer.status_code < 300, answer.text

    return run


def _all(*steps: Callable[[httpx.Client], None]) -> Callable[[httpx.Client], None]:
    def run(c: httpx.Client) -> None:
        for step in steps:
            step(c)

    return run


def _nothing(c: httpx.Client) -> None:
    pass


_OSD = {"OSD_DOWN": {"severity": "HEALTH_WARN", "message": "1 osds down", "count": 1}}
ROWS = [
    Row(
        "ha", "ha.resource_error", "ha.resource_recovered", "ha/vm:100",
        _put("/ha/vm:100", {"state": "started"}), _put("/ha/vm:100", {"state": "error"}),
        _put("/ha/vm:100", {"state": "started"}), "/cluster/ha/status/current",
    ),
    Row(
        "ha", "ha.node_fenced", "ha.node_recovered", "ha/node/pve2",
        _put("/ha/vm:100", {"state": "started"}), _put("/ha/nodes/pve2", {"state": "fence"}),
        _put("/ha/nodes/pve2", {"state": "online"}), "/cluster/ha/status/manager_status",
    ),
    Row(
        "ceph", "ceph.health_warn", "ceph.health_ok", "ceph/e2e",
        _put("/ceph", {"health": "HEALTH_OK", "checks": {}}),
        _put("/ceph", {"checks": _OSD}),
        _put("/ceph", {"health": "HEALTH_OK", "checks": {}}), "/cluster/ceph/status",
    ),
    Row(
        "ceph", "ceph.check_raised", "ceph.check_cleared", "ceph/e2e/OSD_DOWN",
        _put("/ceph", {"health": "HEALTH_OK", "checks": {}}),
        _put("/ceph", {"checks": _OSD}),
        _put("/ceph", {"health": "HEALTH_OK", "checks": {}}), "/cluster/ceph/status",
    ),
    Row(
        "replication", "replication.failed", "replication.recovered", "replication/100-0",
        _put("/replication/100-0", {"target": "pve2"}),
        _put("/replication/100-0", {"fail_count": 1, "error": "no space left on pve2"}),
        _put("/replication/100-0", {"fail_count": 0}), "/nodes/pve3/replication", "pve3",
    ),
    Row(
        "qdevice", "qdevice.disconnected", "qdevice.connected", "qdevice/e2e",
        _put("/qdevice", {"state": "Connected", "host": "192.168.1.5"}),
        _put("/qdevice", {"state": "Disconnected", "host": "192.168.1.5"}),
        _put("/qdevice", {"state": "Connected", "host": "192.168.1.5"}),
        "/cluster/config/qdevice",
    ),
    Row(
        "certificates", "certificate.expiring", "certificate.renewed",
        "certificate/pve1/pve-ssl.pem",
        _nothing,
        _put("/certificates/pve1/pve-ssl.pem", lambda: {"notafter": int(time.time()) + 5 * DAY}),
        _put("/certificates/pve1/pve-ssl.pem", lambda: {"notafter": int(time.time()) + 400 * DAY}),
        "/nodes/pve1/certificates/info", "pve1",
    ),
    Row(
        "disks", "disk.failed", "disk.healthy", "disk/pve1/sda",
        _nothing, _put("/disks/pve1/sda", {"health": "FAILED!"}),
        _put("/disks/pve1/sda", {"health": "PASSED"}), "/nodes/pve1/disks/list", "pve1",
    ),
    Row(
        "disks", "zfs.degraded", "zfs.online", "zfs/pve1/rpool",
        _nothing, _put("/zfs/pve1/rpool", {"health": "DEGRADED"}),
        _put("/zfs/pve1/rpool", {"health": "ONLINE"}), "/nodes/pve1/disks/zfs", "pve1",
    ),
    Row(
        "backups", "backup.not_covered", "backup.covered", "backup/qemu/101",
        _nothing, _put("/backup-jobs/backup-5f0c2a1e-7b3d", {"exclude": "101"}),
        _put("/backup-jobs/backup-5f0c2a1e-7b3d", {"exclude": None}),
        "/cluster/backup-info/not-backed-up",
    ),
    Row(
        "backups", "backup.stale", "backup.fresh", "backup/qemu/103",
        _nothing,
        _put("/backups/103", lambda: {"last_backup": int(time.time()) - 3 * DAY}),
        _put("/backups/103", lambda: {"last_backup": int(time.time()) - 3600}),
        "/cluster/backup",
    ),
]  # fmt: skip


@contextmanager
def unreadable(c: httpx.Client, path: str) -> Iterator[None]:
    answer = c.put("/paths", json={"path": path, "status": 500, "message": "got timeout"})
    assert answer.status_code < 300, answer.text
    try:
        yield
    finally:
        c.request("DELETE", "/paths", json={"path": path})


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.bad_type)
def test_each_condition_reported_once_resolved_once(tmp_path: Path, row: Row) -> None:
    with simulator() as sim, control(sim) as c:
        row.setup(c)
        config = checks_config(sim, tmp_path, (row.check,), row.bad_type)
        with running_watcher(config):
            runs_after(config, row.check)
            assert states(config)[row.check].status == "up"
            # While the check cannot read, the problem is not reported.
            with unreadable(c, row.unreadable):
                row.bad(c)
                runs_after(config, row.check, 3)
                assert of_type(tmp_path, row.bad_type) == []
                # A per-node check reads the other nodes on: it is up, without this one.
                assert states(config)[row.check].status == ("up" if row.node else "failing")
            found = wait_for(lambda: of_type(tmp_path, row.bad_type), what=row.bad_type)
        first = [e for e in found if e["resource"]["id"] == row.resource]
        assert len(first) == 1, found
        event = first[0]
        assert "at_start" not in event.get("details", {})
        assert event["condition"] == f"{event['condition'].partition(':')[0]}:{row.resource}"
        held = _t(event["time"]) - _t(event["details"]["since"])
        assert held >= HOLD, event
        # A restart does not repeat it.
        with running_watcher(config):
            runs_after(config, row.check, 3)
            assert len(of_type(tmp_path, row.bad_type)) == len(found)
            assert states(config)[row.check].open_conditions >= 1
            row.good(c)
            ended = wait_for(lambda: of_type(tmp_path, row.good_type), what=row.good_type)
            runs_after(config, row.check, 2)
        ended = [e for e in of_type(tmp_path, row.good_type) if e["resource"]["id"] == row.resource]
        assert len(ended) == 1
        assert ended[0]["resolves"] == event["id"]
        assert ended[0]["condition"] == event["condition"]


def served(sim: SimServer, suffix: str) -> int:
    with control(sim) as c:
        stats = c.get("/stats").json()
    return sum(n for path, n in stats["paths"].items() if path.endswith(suffix))


def _t(text: str) -> float:
    from pvewatch.model import parse_time

    return parse_time(text).timestamp()


@pytest.mark.parametrize("row", [r for r in ROWS if r.node], ids=lambda r: r.bad_type)
def test_silent_while_the_node_is_offline(tmp_path: Path, row: Row) -> None:
    assert row.node is not None
    with simulator() as sim, control(sim) as c:
        row.setup(c)
        config = checks_config(sim, tmp_path, (row.check,), row.bad_type)
        with running_watcher(config):
            runs_after(config, row.check)
            c.patch(f"/resources/node/{row.node}", json={"status": "offline"})
            wait_for(lambda: of_type(tmp_path, "node.offline"), what="node.offline")
            row.bad(c)
            runs_after(config, row.check, 3)
            assert of_type(tmp_path, row.bad_type) == []
            # Back online, what it hides is read again, and reported.
            c.patch(f"/resources/node/{row.node}", json={"status": "online"})
            wait_for(lambda: of_type(tmp_path, row.bad_type), what=row.bad_type)


def test_a_condition_bad_at_first_sight_is_reported_once_at_start(tmp_path: Path) -> None:
    with simulator() as sim, control(sim) as c:
        _put("/replication/100-0", {"target": "pve2", "fail_count": 4, "error": "boom"})(c)
        config = checks_config(sim, tmp_path, ("replication",), "replication.failed")
        with running_watcher(config):
            found = wait_for(lambda: of_type(tmp_path, "replication.failed"), what="the failure")
        assert len(found) == 1
        assert found[0]["details"]["at_start"] is True
        assert found[0]["severity"] == "critical"  # fail_count >= 3
        assert found[0]["details"]["fail_count"] == 4
        assert "VM 100" in found[0]["summary"]
        assert "pve2" in found[0]["summary"]


def test_nothing_set_up_no_events_and_no_warnings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with simulator() as sim:
        config = checks_config(sim, tmp_path, tuple(CHECKS), "none")
        caplog.set_level(logging.WARNING, logger="pvewatch")
        with running_watcher(config):
            for name in CHECKS:
                runs_after(config, name, 2)
            found = states(config)
        assert {n: s.status for n, s in found.items()} == {
            "ha": "idle", "ceph": "idle", "replication": "idle", "qdevice": "idle",
            "certificates": "up", "disks": "up", "backups": "up",
        }  # fmt: skip
        events = [e for e in read_events(tmp_path / "events.jsonl")]
        assert [e for e in events if e["type"].split(".")[0] not in ("guest", "node")] == []
        # pvewatch's own (apscheduler may say it skipped a run of a 0.5 s check here).
        ours = [r for r in caplog.records if r.name.startswith("pvewatch")]
        assert [r.getMessage() for r in ours if r.levelno >= logging.WARNING] == []


def test_a_403_disables_the_check_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.e2e.harness import TOKEN

    with simulator() as sim, control(sim) as c:
        user = TOKEN.partition("=")[0]
        assert c.put(f"/acl/{user}", json={"/vms": ["VM.Audit"]}).status_code < 300
        config = checks_config(sim, tmp_path, ("ceph",), "none")
        caplog.set_level(logging.WARNING, logger="pvewatch")
        with running_watcher(config):
            wait_for(lambda: states(config).get("ceph", None), what="a run")
            assert states(config)["ceph"].status == "disabled"
            asked = served(sim, "/cluster/ceph/status")
            polls = served(sim, "/cluster/resources")
            wait_for(lambda: served(sim, "/cluster/resources") > polls + 3, what="more polls")
            assert served(sim, "/cluster/ceph/status") == asked  # it asks no more
        warnings = [r.getMessage() for r in caplog.records if "disabled" in r.getMessage()]
        assert len(warnings) == 1
        assert "Sys.Audit" in warnings[0]


def test_a_silenced_condition_is_recorded_and_sent_nowhere(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from pvewatch.silence import Matcher

    with simulator() as sim, control(sim) as c:
        config = checks_config(sim, tmp_path, ("disks",), "none")
        now = datetime.now(UTC)
        with SqliteStore(config.store.path) as store:
            store.add_silence([Matcher("type", "disk.*")], starts_at=now,
                              ends_at=now + timedelta(hours=1), comment="disk swap",
                              created_by="test")  # fmt: skip
        with running_watcher(config):
            runs_after(config, "disks")
            _put("/disks/pve2/sdb", {"health": "FAILED!"})(c)
            _put("/zfs/pve2/rpool", {"health": "DEGRADED"})(c)
            wait_for(lambda: of_type(tmp_path, "zfs.degraded"), what="the pool, not silenced")
        with SqliteStore(config.store.path) as store:
            recorded = [e for e in store.events() if e.type == "disk.failed"]
        assert [(e.resource.id if e.resource else None, e.suppressed) for e in recorded] == [
            ("disk/pve2/sdb", "silenced")
        ]
        assert of_type(tmp_path, "disk.failed") == []  # sent nowhere


def test_a_condition_that_began_while_pvewatch_was_stopped_is_detected_late(
    tmp_path: Path,
) -> None:
    with simulator() as sim, control(sim) as c:
        _put("/qdevice", {"state": "Connected"})(c)
        config = checks_config(sim, tmp_path, ("qdevice",), "none")
        with running_watcher(config):
            runs_after(config, "qdevice")
        stopped = time.monotonic()
        _put("/qdevice", {"state": "Connect failed"})(c)
        # Down for longer than two intervals of the check (0.5 s): a gap, not a restart.
        wait_for(lambda: time.monotonic() - stopped > 1.5, what="a gap of three intervals")
        with running_watcher(config):
            found = wait_for(lambda: of_type(tmp_path, "qdevice.disconnected"), what="it")
            _put("/qdevice", {"state": "Connected"})(c)
            ended = wait_for(lambda: of_type(tmp_path, "qdevice.connected"), what="the end")
    assert [e["detected_late"] for e in found] == [True]
    assert "at_start" not in found[0]["details"]
    assert [e["detected_late"] for e in ended] == [False]


def test_any_other_ha_state_change_is_one_info_event(tmp_path: Path) -> None:
    with simulator() as sim, control(sim) as c:
        _put("/ha/vm:100", {"state": "started"})(c)
        config = checks_config(sim, tmp_path, ("ha",), "none")
        with running_watcher(config):
            runs_after(config, "ha")
            _put("/ha/vm:100", {"state": "migrate"})(c)
            found = wait_for(lambda: of_type(tmp_path, "ha.resource_state_changed"), what="it")
        with running_watcher(config):
            runs_after(config, "ha", 3)
        assert len(of_type(tmp_path, "ha.resource_state_changed")) == 1
        [event] = found
        assert (event["severity"], event["resource"]["id"]) == ("info", "ha/vm:100")
        assert event["change"] == {"field": "state", "old": "started", "new": "migrate"}
        assert of_type(tmp_path, "ha.resource_error") == []


def test_a_stale_backup_names_the_backup_task_that_failed(tmp_path: Path) -> None:
    with simulator() as sim, control(sim) as c:
        config = checks_config(sim, tmp_path, ("backups",), "backup.stale")
        with running_watcher(config):
            runs_after(config, "backups")
            ran = c.post("/vzdump", json={"vmids": [103], "fail": {"103": "no space left"}})
            assert ran.status_code < 300, ran.text
            [upid] = ran.json()["tasks"]
            # The poll has read the failed task (and reported it) before the backup ages.
            wait_for(lambda: of_type(tmp_path, "task.failed"), what="the failed backup task")
            _put("/backups/103", lambda: {"last_backup": int(time.time()) - 3 * DAY})(c)
            found = wait_for(lambda: of_type(tmp_path, "backup.stale"), what="backup.stale")
    [event] = [e for e in found if e["resource"]["id"] == "backup/qemu/103"]
    assert event["cause"] == {"kind": "backup", "task": upid, "user": "root@pam"}
    assert "(last backup task: " in event["summary"]
