"""The pure cluster model: rows per type and version, the offline timeline, new guests,
tasks and churn determinism (no sockets)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvewatch.simulator import SimOptions
from pvewatch.simulator.cluster import SimCluster
from pvewatch.simulator.edits import ControlError
from pvewatch.simulator.tasks import MAX_FINISHED_PER_NODE, Task, parse_upid
from tests.simulator.support import FakeClock

GUEST_METRICS = {"name", "uptime", "template", "maxcpu", "cpu", "maxmem", "mem", "maxdisk"}
GUEST_METRICS |= {"disk", "netin", "netout", "diskread", "diskwrite"}


def make(clock: FakeClock, **changes: Any) -> SimCluster:
    settings: dict[str, Any] = {"nodes": 3, "guests": 30, "offline_expiry_secs": 300}
    options = SimOptions(**(settings | changes))
    return SimCluster(options, clock)


def by_id(cluster: SimCluster, now: float) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in cluster.resources(None, now)}


def a_running_guest_on(cluster: SimCluster, node: str) -> str:
    return next(g.id for g in cluster.guests.values() if g.node == node and g.live)


@pytest.mark.parametrize("version", [8, 9])
def test_rows_carry_the_fields_of_their_type_and_version(version: int) -> None:
    clock = FakeClock()
    rows = make(clock, pve_version=version).resources(None, clock.now)
    types = {r["type"] for r in rows}
    assert types == {"pool", "qemu", "lxc", "node", "storage", "network" if version == 9 else "sdn"}
    for row in rows:
        if row["type"] in ("qemu", "lxc"):
            assert row.keys() >= GUEST_METRICS
            assert ("memhost" in row) == (version == 9)
            assert row["template"] in (0, 1)
            assert row["id"] == f"{row['type']}/{row['vmid']}"
        if row["type"] == "pool":
            assert row["id"] == "/pool/" + row["pool"]
            assert "status" not in row
        if row["type"] == "node":
            assert "name" not in row
            assert row["cgroup-mode"] == 2
        if row["type"] == "storage":
            assert row["shared"] in (0, 1)
            assert isinstance(row["content"], str)
    local = {r["node"] for r in rows if r.get("network") == "localnetwork" or r.get("sdn")}
    assert local == {"pve1", "pve2", "pve3"}


def test_guests_are_sorted_by_vmid_as_a_string() -> None:
    clock = FakeClock()
    cluster = make(clock)
    cluster.create_guest({"id": "qemu/1000"}, clock.now)
    vmids = [r["vmid"] for r in cluster.resources("vm", clock.now)]
    assert vmids == sorted(vmids, key=str)


def test_shared_storage_is_listed_once_per_node_with_the_same_usage() -> None:
    clock = FakeClock()
    rows = make(clock, storages_per_node=3).resources("storage", clock.now)
    nfs = [r for r in rows if r["storage"] == "nfs-backup"]
    assert [r["node"] for r in nfs] == ["pve1", "pve2", "pve3"]
    assert len({r["disk"] for r in nfs}) == 1


def test_offline_node_timeline() -> None:
    clock = FakeClock()
    cluster = make(clock)
    guest = a_running_guest_on(cluster, "pve2")
    before = by_id(cluster, clock.now)
    cluster.patch("node/pve2", {"status": "offline"}, clock.now)

    clock.advance(60)  # within the expiry: node numbers gone, guests frozen
    rows = by_id(cluster, clock.now)
    assert rows["node/pve2"]["status"] == "offline"
    assert {"uptime", "cpu", "mem", "disk"}.isdisjoint(rows["node/pve2"])
    assert {"maxcpu", "maxmem", "maxdisk", "level"} <= rows["node/pve2"].keys()
    assert rows[guest]["status"] == "running"
    assert rows[guest]["uptime"] == before[guest]["uptime"]
    assert rows["storage/pve2/local"]["status"] == "available"
    assert {"online": 0}.items() <= _status_of(cluster, "pve2").items()

    clock.advance(300)  # past the expiry: skeletal unknown rows
    rows = by_id(cluster, clock.now)
    assert set(rows[guest]) <= {
        "id",
        "vmid",
        "node",
        "type",
        "status",
        "pool",
        "lock",
        "tags",
        "hastate",
    }
    assert rows[guest]["status"] == "unknown"
    assert rows["storage/pve2/local"]["status"] == "unknown"
    assert "disk" not in rows["storage/pve2/local"]
    assert set(rows["node/pve2"]) <= {"id", "node", "type", "status", "cgroup-mode", "hastate"}
    assert rows["network/pve2/zone/localnetwork"]["status"] == "ok"

    cluster.patch("node/pve2", {"status": "online"}, clock.now)
    rows = by_id(cluster, clock.now)
    assert rows[guest]["status"] == "running"
    assert rows["node/pve2"]["status"] == "online"
    assert _status_of(cluster, "pve2")["online"] == 1


def _quorate(cluster: SimCluster) -> int | None:
    entries = [e for e in cluster.cluster_status() if e["type"] == "cluster"]
    return entries[0]["quorate"] if entries else None


@pytest.mark.parametrize("nodes", [2, 3])
def test_a_node_whose_pvestatd_is_silent_is_unknown_and_still_a_member(nodes: int) -> None:
    """FACTS §2.5, §2.9 #5: `unknown` is a corosync member without metrics; /cluster/status
    counts it online, so the cluster keeps its quorum."""
    clock = FakeClock()
    cluster = make(clock, nodes=nodes)
    guest = a_running_guest_on(cluster, "pve2")
    cluster.patch("node/pve2", {"status": "unknown"}, clock.now)
    rows = by_id(cluster, clock.now)
    assert set(rows["node/pve2"]) <= {"id", "node", "type", "status", "cgroup-mode", "hastate"}
    assert rows["node/pve2"]["status"] == "unknown"
    assert rows[guest]["status"] == "unknown"
    assert rows["storage/pve2/local"]["status"] == "unknown"
    assert _status_of(cluster, "pve2")["online"] == 1
    assert _quorate(cluster) == 1

    cluster.patch("node/pve2", {"corosync": "offline"}, clock.now)  # now it leaves too
    assert by_id(cluster, clock.now)["node/pve2"]["status"] == "offline"
    assert _status_of(cluster, "pve2")["online"] == 0
    assert _quorate(cluster) == (0 if nodes == 2 else 1)

    cluster.patch("node/pve2", {"corosync": "online"}, clock.now)  # back, pvestatd still dead
    assert by_id(cluster, clock.now)["node/pve2"]["status"] == "unknown"
    assert _status_of(cluster, "pve2")["online"] == 1

    cluster.patch("node/pve2", {"status": "online"}, clock.now)
    rows = by_id(cluster, clock.now)
    assert (rows["node/pve2"]["status"], rows[guest]["status"]) == ("online", "running")


def test_membership_can_leave_while_pvestatd_still_reports() -> None:
    clock = FakeClock()
    cluster = make(clock, nodes=2)
    cluster.patch("node/pve2", {"corosync": "offline"}, clock.now)
    assert by_id(cluster, clock.now)["node/pve2"]["status"] == "offline"
    assert (_status_of(cluster, "pve2")["online"], _quorate(cluster)) == (0, 0)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"status": "down"}, "node/pve2: status must be online, offline or unknown"),
        ({"corosync": 0}, "node/pve2: corosync must be online or offline"),
        ({"status": "unknown", "corosync": "gone"}, "node/pve2: corosync must be"),
    ],
)
def test_node_states_are_checked(fields: dict[str, Any], message: str) -> None:
    clock = FakeClock()
    cluster = make(clock)
    with pytest.raises(ControlError, match=message):
        cluster.patch("node/pve2", fields, clock.now)
    assert by_id(cluster, clock.now)["node/pve2"]["status"] == "online"  # nothing applied


def test_served_rows_count_an_unknown_node_as_a_member() -> None:
    clock = FakeClock()
    cluster = make(clock)
    rows = [
        {"id": "node/a", "type": "node", "node": "a", "status": "online"},
        {"id": "node/b", "type": "node", "node": "b", "status": "unknown"},
    ]
    cluster.replace_resources(rows)
    assert [(e["name"], e["online"]) for e in cluster.cluster_status()[1:]] == [("a", 1), ("b", 1)]
    assert _quorate(cluster) == 1
    cluster.patch("node/b", {"corosync": "offline"}, clock.now)
    assert _quorate(cluster) == 0
    assert "corosync" not in by_id(cluster, clock.now)["node/b"]  # not a field PVE sends


def _status_of(cluster: SimCluster, node: str) -> dict[str, Any]:
    return next(
        e for e in cluster.cluster_status() if e.get("name") == node and e["type"] == "node"
    )


def test_new_guest_is_unknown_with_lock_create_for_one_cycle() -> None:
    clock = FakeClock()
    cluster = make(clock)
    cluster.create_guest({"id": "lxc/555", "node": "pve3", "tags": "new"}, clock.now)
    row = by_id(cluster, clock.now)["lxc/555"]
    assert row == {"id": "lxc/555", "type": "lxc", "vmid": 555, "node": "pve3"} | {
        "status": "unknown",
        "lock": "create",
        "tags": "new",
    }
    clock.advance(cluster.cycle_secs)
    row = by_id(cluster, clock.now)["lxc/555"]
    assert row["status"] == "stopped"
    assert "lock" not in row
    assert row["name"] == "CT555"


def test_render_key_changes_with_edits_and_cycles_only() -> None:
    clock = FakeClock(1000.0)
    cluster = make(clock)
    key = cluster.render_key(clock.now)
    assert cluster.render_key(clock.now + 1) == key
    cluster.patch("qemu/100", {"tags": "x"}, clock.now)
    assert cluster.render_key(clock.now) != key
    key = cluster.render_key(clock.now)
    assert cluster.render_key(clock.now + cluster.cycle_secs) != key


def test_finished_tasks_are_capped_per_node_newest_first() -> None:
    clock = FakeClock()
    cluster = make(clock)
    running = cluster.start_task("pve1", "vncproxy", "100", "root@pam", clock.now, [])
    for i in range(MAX_FINISHED_PER_NODE + 5):
        task = cluster.start_task("pve1", "qmstart", str(100 + i), "alice@pve", clock.now, [])
        clock.advance(1)
        cluster.finish_task(task.upid, "OK", clock.now)
    rows = cluster.task_rows()
    assert rows[0]["upid"] == running.upid
    assert "status" not in rows[0]
    assert "pid" in rows[0]
    finished = rows[1:]
    assert len(finished) == MAX_FINISHED_PER_NODE
    assert [r["endtime"] for r in finished] == sorted(
        (r["endtime"] for r in finished), reverse=True
    )
    assert all("pid" not in r and r["status"] == "OK" for r in finished)


def test_token_tasks_split_user_and_tokenid() -> None:
    clock = FakeClock()
    task = make(clock).start_task("pve1", "qmstop", "101", "ops@pve!ci", clock.now, [])
    assert task.upid.endswith(":qmstop:101:ops@pve!ci:")
    row = task.list_row()
    assert (row["user"], row["tokenid"]) == ("ops@pve", "ci")


@given(
    node=st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True),
    pid=st.integers(0, 0xFFFFFFFF),
    pstart=st.integers(0, 0xFFFFFFFF),
    start=st.integers(0, 0xFFFFFFFF),
    kind=st.sampled_from(["qmstart", "vzdump", "qmigrate", "srvreload"]),
    object_id=st.sampled_from(["", "100", "999999999"]),
    user=st.sampled_from(["root@pam", "a@pve!tok-1"]),
)
def test_upids_have_nine_fields_and_decode_back(
    node: str, pid: int, pstart: int, start: int, kind: str, object_id: str, user: str
) -> None:
    upid = Task(node, pid, pstart, start, kind, object_id, user).upid
    assert len(upid.split(":")) == 9
    assert upid.endswith(":")
    fields = parse_upid(upid)
    assert fields is not None
    assert int(fields["pid"], 16) == pid
    assert int(fields["starttime"], 16) == start
    assert (fields["node"], fields["type"], fields["id"], fields["user"]) == (
        node,
        kind,
        object_id,
        user,
    )


def run_churn(seed: int) -> str:
    clock = FakeClock()
    cluster = make(clock, seed=seed)
    rng = random.Random(seed)
    for i in range(200):
        cluster.step(rng, clock.now + i * 7)
    end = clock.now + 200 * 7
    return json.dumps([cluster.resources(None, end), cluster.task_rows()], sort_keys=True)


def test_churn_is_deterministic_given_the_seed() -> None:
    assert run_churn(7) == run_churn(7)
    assert run_churn(7) != run_churn(8)


def test_churn_produces_the_realistic_kinds_of_change() -> None:
    clock = FakeClock()
    cluster = make(clock, seed=3)
    rng = random.Random(3)
    seen_locks: set[str] = set()
    for i in range(300):
        cluster.step(rng, clock.now + i * 5)
        seen_locks |= {g.lock for g in cluster.guests.values() if g.lock}
    kinds = {r["type"] for r in cluster.task_rows()}
    assert {"vzdump", "qmstart"} <= kinds or {"vzdump", "vzstart"} <= kinds
    assert kinds & {"qmigrate", "vzmigrate"}
    assert {"migrate", "backup"} <= seen_locks
    statuses = {r.get("status") for r in cluster.task_rows()}
    assert "OK" in statuses


def test_churn_leaves_a_replaced_list_alone() -> None:
    clock = FakeClock()
    cluster = make(clock)
    cluster.replace_resources([{"id": "qemu/1", "type": "qemu", "status": "running"}])
    rng = random.Random(1)
    for i in range(50):
        cluster.step(rng, clock.now + i)
    assert cluster.resources(None, clock.now) == [
        {"id": "qemu/1", "type": "qemu", "status": "running"}
    ]
