"""Driving the health endpoints through /_sim/: each condition a watcher reports can be
made, shows where PVE shows it, and a bad control request changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.simulator.support import FakeClock


def data(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["data"]


def guests(api: httpx.Client) -> dict[int, dict[str, Any]]:
    return {g["vmid"]: g for g in data(api.get("/cluster/resources", params={"type": "vm"}))}


def first(api: httpx.Client, kind: str) -> dict[str, Any]:
    return min((g for g in guests(api).values() if g["type"] == kind), key=lambda g: g["vmid"])


def test_default_cluster_has_nothing_to_report(api: httpx.Client, clock: FakeClock) -> None:
    """No Ceph, no QDevice, no replication; disks, pools, certificates and backups fine."""
    assert api.get("/cluster/ceph/status").status_code == 500
    assert data(api.get("/cluster/config/qdevice")) == {}
    assert data(api.get("/cluster/replication")) == []
    assert data(api.get("/cluster/backup-info/not-backed-up")) == []
    services = [r for r in data(api.get("/cluster/ha/status/current")) if r["type"] == "service"]
    assert all(s["crm_state"] == "started" for s in services)
    for node in ("pve1", "pve2", "pve3"):
        assert data(api.get(f"/nodes/{node}/replication")) == []
        assert {d["health"] for d in data(api.get(f"/nodes/{node}/disks/list"))} == {"PASSED"}
        assert {p["health"] for p in data(api.get(f"/nodes/{node}/disks/zfs"))} == {"ONLINE"}
        certs = data(api.get(f"/nodes/{node}/certificates/info"))
        assert min(c["notafter"] for c in certs) - clock.now > 30 * 86_400


def test_ha_resource_into_error_shows_in_both_answers(api: httpx.Client, ctl: httpx.Client) -> None:
    vm = first(api, "qemu")
    sid = f"vm:{vm['vmid']}"
    assert ctl.put(f"/ha/{sid}", json={"state": "error"}).status_code == 200
    row = next(r for r in data(api.get("/cluster/ha/status/current")) if r.get("sid") == sid)
    assert (row["crm_state"], row["state"], row["status"]) == (
        "error",
        "error",
        f"{sid} ({vm['node']}, error)",
    )
    assert guests(api)[vm["vmid"]]["hastate"] == "error"
    assert ctl.delete(f"/ha/{sid}").status_code == 200
    assert "hastate" not in guests(api)[vm["vmid"]]
    assert sid not in {r.get("sid") for r in data(api.get("/cluster/ha/status/current"))}


def test_node_fenced_then_recovered(api: httpx.Client, ctl: httpx.Client) -> None:
    vm = first(api, "qemu")
    sid, node = f"vm:{vm['vmid']}", vm["node"]
    ctl.put(f"/ha/{sid}", json={"state": "started"})
    assert ctl.put(f"/ha/nodes/{node}", json={"state": "fence"}).status_code == 200
    manager = data(api.get("/cluster/ha/status/manager_status"))["manager_status"]
    assert manager["node_status"][node] == "fence"
    assert manager["service_status"][sid]["state"] == "fence"
    nodes = {r["id"]: r for r in data(api.get("/cluster/resources", params={"type": "node"}))}
    assert nodes[f"node/{node}"]["hastate"] == "fence"
    ctl.put(f"/ha/nodes/{node}", json={"state": "unknown"})
    row = next(r for r in data(api.get("/cluster/ha/status/current")) if r.get("sid") == sid)
    assert row["state"] == "recovery"
    titles = [n["title"] for n in ctl.get("/notify/sent").json()]
    assert titles == [f"Trying to fence node '{node}' ", f"Successfully fenced node '{node}' "]


def test_offline_nodes_lrm_goes_stale_after_30s(
    api: httpx.Client, ctl: httpx.Client, clock: FakeClock
) -> None:
    ctl.put(f"/ha/vm:{first(api, 'qemu')['vmid']}", json={})
    ctl.patch("/resources/node/pve3", json={"status": "offline"})
    lrm = {r["id"]: r for r in data(api.get("/cluster/ha/status/current"))}["lrm:pve3"]
    assert "old timestamp" not in lrm["status"]
    clock.advance(45)
    lrm = {r["id"]: r for r in data(api.get("/cluster/ha/status/current"))}["lrm:pve3"]
    assert lrm["status"].startswith("pve3 (old timestamp - dead?, watchdog standby, ")


def test_ceph_checks_raised_and_muted(api: httpx.Client, ctl: httpx.Client) -> None:
    osd_down = {"severity": "HEALTH_WARN", "message": "1 osds down", "detail": ["osd.4 is down"]}
    crash = {"severity": "HEALTH_ERR", "message": "1 daemons crashed", "muted": True}
    assert ctl.put("/ceph", json={"checks": {"OSD_DOWN": osd_down}}).status_code == 200
    status = data(api.get("/cluster/ceph/status"))
    assert status["health"]["status"] == "HEALTH_WARN"
    assert status["health"]["checks"]["OSD_DOWN"]["summary"] == {
        "message": "1 osds down",
        "count": 1,
    }
    assert status["osdmap"]["num_up_osds"] == status["osdmap"]["num_osds"] - 1
    ctl.put("/ceph", json={"checks": {"RECENT_CRASH": crash}})
    health = data(api.get("/cluster/ceph/status"))["health"]
    assert health["status"] == "HEALTH_OK"  # a muted check does not count
    assert health["mutes"] == [
        {"code": "RECENT_CRASH", "sticky": False, "summary": "1 daemons crashed", "count": 1}
    ]
    ctl.put("/ceph", json={"health": "HEALTH_ERR"})
    assert data(api.get("/nodes/pve1/ceph/status"))["health"]["status"] == "HEALTH_ERR"
    ctl.delete("/ceph")
    assert (
        api.get("/cluster/ceph/status").reason_phrase == "binary not installed: /usr/bin/ceph-mon"
    )


def test_replication_failing_and_recovering(
    api: httpx.Client, ctl: httpx.Client, clock: FakeClock
) -> None:
    vm = first(api, "qemu")
    job, node = f"{vm['vmid']}-0", vm["node"]
    assert ctl.put(f"/replication/{job}", json={"schedule": "*/15"}).status_code == 200
    ok_row = data(api.get(f"/nodes/{node}/replication"))[0]
    assert ok_row["fail_count"] == 0
    assert "error" not in ok_row
    assert ok_row["next_sync"] == ok_row["last_try"] + 900
    for count in (1, 2, 3, 4):
        clock.advance(300)
        ctl.put(f"/replication/{job}", json={"fail_count": count, "error": "got timeout"})
    row = data(api.get(f"/nodes/{node}/replication"))[0]
    assert (row["fail_count"], row["error"], row["last_sync"]) == (
        4,
        "got timeout",
        ok_row["last_sync"],
    )
    assert row["next_sync"] == row["last_try"] + 30 * 60
    sent = [n for n in ctl.get("/notify/sent").json() if n["type"] == "replication"]
    assert len(sent) == 3  # PVE mails at 1, 2, 3 failures, then after a day
    assert sent[0]["fields"] == {"type": "replication", "job-id": job, "hostname": node}
    ctl.put(f"/replication/{job}", json={"fail_count": 0})
    row = data(api.get(f"/nodes/{node}/replication"))[0]
    assert row["fail_count"] == 0
    assert "error" not in row
    assert row["last_sync"] == int(clock.now)


def test_qdevice_connection_lost(api: httpx.Client, ctl: httpx.Client) -> None:
    ctl.put("/qdevice", json={"state": "Connected", "host": "10.9.9.9"})
    answer = data(api.get("/cluster/config/qdevice"))
    assert answer["State"] == "Connected"
    assert answer["Last poll call"].endswith(" (cast vote)")
    assert answer["QNetd host"] == "10.9.9.9:5403"
    ctl.put("/qdevice", json={"state": "Connect failed"})
    answer = data(api.get("/cluster/config/qdevice"))
    assert answer["State"] == "Connect failed"
    assert "(cast vote)" not in answer["Last poll call"]
    ctl.delete("/qdevice")
    assert data(api.get("/cluster/config/qdevice")) == {}


def test_certificate_near_expiry_and_the_ca_for_every_node(
    api: httpx.Client, ctl: httpx.Client, clock: FakeClock
) -> None:
    soon = int(clock.now) + 5 * 86_400
    ctl.put("/certificates/pve2/pve-ssl.pem", json={"notafter": soon})
    ctl.put("/certificates/pve1/pve-root-ca.pem", json={"notafter": soon + 1})
    by_node = {
        n: {c["filename"]: c for c in data(api.get(f"/nodes/{n}/certificates/info"))}
        for n in ("pve1", "pve2")
    }
    assert by_node["pve2"]["pve-ssl.pem"]["notafter"] == soon
    assert by_node["pve1"]["pve-ssl.pem"]["notafter"] > soon + 300 * 86_400
    assert {c["pve-root-ca.pem"]["notafter"] for c in by_node.values()} == {soon + 1}
    ctl.put("/certificates/pve1/pveproxy-ssl.pem", json={"notafter": soon})
    assert ctl.delete("/certificates/pve1/pveproxy-ssl.pem").status_code == 200
    names = [c["filename"] for c in data(api.get("/nodes/pve1/certificates/info"))]
    assert names == ["pve-root-ca.pem", "pve-ssl.pem"]


def test_disk_failing_and_pool_degraded(api: httpx.Client, ctl: httpx.Client) -> None:
    ctl.put("/disks/pve1/sdb", json={"health": "FAILED!"})
    ctl.put("/disks/pve1/sdc", json={"health": "UNKNOWN", "type": "hdd"})
    ctl.put("/zfs/pve1/rpool", json={"health": "DEGRADED"})
    disks = {d["devpath"]: d for d in data(api.get("/nodes/pve1/disks/list"))}
    assert (disks["/dev/sdb"]["health"], disks["/dev/sdc"]["health"]) == ("FAILED!", "UNKNOWN")
    skipped = data(api.get("/nodes/pve1/disks/list", params={"skipsmart": "1"}))
    assert {d["health"] for d in skipped} == {"UNKNOWN"}
    assert data(api.get("/nodes/pve1/disks/zfs"))[0]["health"] == "DEGRADED"
    assert data(api.get("/nodes/pve2/disks/zfs"))[0]["health"] == "ONLINE"
    unused = data(api.get("/nodes/pve1/disks/list", params={"type": "unused"}))
    assert [d["devpath"] for d in unused] == ["/dev/sdc"]


def test_backup_aged_and_uncovered(api: httpx.Client, ctl: httpx.Client, clock: FakeClock) -> None:
    vm = first(api, "qemu")
    old = int(clock.now) - 21 * 86_400
    assert ctl.put(f"/backups/{vm['vmid']}", json={"last_backup": old}).status_code == 200
    content = data(
        api.get(f"/nodes/{vm['node']}/storage/local/content", params={"vmid": vm["vmid"]})
    )
    assert max(v["ctime"] for v in content) == old
    ctl.put(f"/backups/{vm['vmid']}", json={"last_backup": None})
    assert (
        data(api.get(f"/nodes/{vm['node']}/storage/local/content", params={"vmid": vm["vmid"]}))
        == []
    )
    ctl.put("/backup-jobs/backup-5f0c2a1e-7b3d", json={"node": "pve1"})
    uncovered = {g["vmid"] for g in data(api.get("/cluster/backup-info/not-backed-up"))}
    assert uncovered == {v for v, g in guests(api).items() if g["node"] != "pve1"}
    ctl.delete("/backup-jobs/backup-5f0c2a1e-7b3d")
    assert len(data(api.get("/cluster/backup-info/not-backed-up"))) == len(guests(api))


def test_backup_job_run_fails_for_a_guest(api: httpx.Client, ctl: httpx.Client) -> None:
    on_pve1 = sorted(v for v, g in guests(api).items() if g["node"] == "pve1")
    bad = on_pve1[0]
    answer = ctl.post(
        "/vzdump",
        json={
            "job": "backup-5f0c2a1e-7b3d",
            "node": "pve1",
            "fail": {str(bad): "unable to find VM"},
        },
    )
    assert answer.status_code == 200, answer.text
    (upid,) = answer.json()["tasks"]
    task = next(t for t in data(api.get("/cluster/tasks")) if t["upid"] == upid)
    assert (task["type"], task["status"], task["user"]) == ("vzdump", "job errors", "root@pam")
    assert task["id"] == ("" if len(on_pve1) > 1 else str(bad))
    log = [
        line["t"] for line in data(api.get(f"/nodes/pve1/tasks/{upid}/log", params={"limit": 0}))
    ]
    assert f"ERROR: Backup of VM {bad} failed - unable to find VM" in log
    assert log[-2:] == ["INFO: Backup job finished with errors", "TASK ERROR: job errors"]
    (sent,) = ctl.get("/notify/sent").json()
    assert sent["title"] == "vzdump backup status (pve1.sim.lan): backup failed "
    assert sent["fields"] == {
        "type": "vzdump",
        "hostname": "pve1",
        "job-id": "backup-5f0c2a1e-7b3d",
    }
    assert sent["status"] == "not_sent"  # no webhook target configured


@pytest.mark.parametrize(
    ("method", "path", "body", "reason"),
    [
        ("PUT", "/ha/vm:99999", {"state": "error"}, "no such guest"),
        ("PUT", "/ha/x:1", {}, "vm:<vmid> or ct:<vmid>"),
        ("PUT", "/ha/nodes/pve1", {"state": "fenced"}, "'state' must be one of"),
        ("PUT", "/ceph", {"checks": {"osd_down": {}}}, "not a health check code"),
        ("PUT", "/ceph", {"health": "WARN"}, "'health' must be one of"),
        ("PUT", "/ceph", {"checks": {"OSD_DOWN": {"severity": "HEALTH_WARN"}}}, "'message'"),
        ("PUT", "/replication/100", {}, "<vmid>-<jobnum>"),
        ("PUT", "/replication/99999-0", {}, "no guest 99999"),
        ("PUT", "/replication/100-0", {"fail_count": -1}, "'fail_count' must be an integer"),
        ("PUT", "/replication/100-0", {"schedule": "whenever"}, "not a calendar event"),
        ("PUT", "/replication/100-0", {"error": "x"}, "needs 'fail_count' > 0"),
        ("PUT", "/qdevice", {"state": "connected"}, "'state' must be one of"),
        ("PUT", "/certificates/pve1/other.pem", {}, "the file is one of"),
        ("PUT", "/certificates/pve1/pve-ssl.pem", {"notafter": "soon"}, "epoch seconds"),
        ("PUT", "/certificates/pve9/pve-ssl.pem", {"notafter": 1}, "no such node"),
        ("PUT", "/disks/pve1/sda", {"wearout": 101}, "'wearout'"),
        ("PUT", "/disks/pve1/sda", {"colour": "red"}, "unknown field(s) colour"),
        ("PUT", "/zfs/pve1/rpool", {"health": "BROKEN"}, "'health' must be one of"),
        ("PUT", "/backups/100", {"last_backup": -5}, "epoch seconds"),
        ("PUT", "/backups/100", {}, "needs 'last_backup'"),
        ("PUT", "/backup-jobs/b1", {"schedule": "21:00"}, "'all': 1, a 'vmid' list or a 'pool'"),
        ("PUT", "/backup-jobs/b1", {"all": 1, "mode": "fast"}, "'mode' must be one of"),
        ("POST", "/vzdump", {}, "needs a 'job' id"),
        ("POST", "/vzdump", {"vmids": [100], "error": "two\nlines"}, "one line"),
        ("PUT", "/acl/nobody", {"/": ["Sys.Audit"]}, "USER@REALM"),
        ("PUT", "/acl/a@pve", {"/": ["sys audit"]}, "not privilege names"),
        ("PUT", "/paths", {"path": "cluster/ceph/status", "data": 1}, "an API path"),
        ("PUT", "/paths", {"path": "/x", "data": 1, "status": 500}, "either 'data' or 'status'"),
        ("PUT", "/paths", {"path": "/x", "status": 200, "message": "x"}, "400..599"),
        ("POST", "/notify", {"type": "Vzdump"}, "'type' must be"),
        ("POST", "/notify", {"type": "vzdump", "severity": "fatal"}, "'severity' must be one of"),
        ("POST", "/notify", {"type": "custom"}, "'title'"),
        ("PUT", "/notify/target", {"url": "ftp://x"}, "http(s) URL"),
    ],
)
def test_bad_control_requests_say_why_and_change_nothing(
    api: httpx.Client, ctl: httpx.Client, method: str, path: str, body: Any, reason: str
) -> None:
    watched = [
        "/cluster/ha/status/current",
        "/cluster/replication",
        "/cluster/config/qdevice",
        "/nodes/pve1/certificates/info",
        "/nodes/pve1/disks/list",
        "/nodes/pve1/disks/zfs",
        "/cluster/backup",
        "/nodes/pve1/storage/local/content",
    ]
    before = [api.get(p).json() for p in watched]
    answer = ctl.request(method, path, json=body)
    assert answer.status_code == 400
    assert reason in answer.json()["message"]
    assert [api.get(p).json() for p in watched] == before
    assert api.get("/cluster/ceph/status").status_code == 500
    assert ctl.get("/paths").json() == {}
    assert ctl.get("/notify/sent").json() == []


def test_a_bad_edit_of_an_existing_resource_changes_nothing(
    api: httpx.Client, ctl: httpx.Client
) -> None:
    sid = f"vm:{first(api, 'qemu')['vmid']}"
    ctl.put(f"/ha/{sid}", json={"max_restart": 1})
    before = data(api.get("/cluster/ha/status/current"))
    bad = ctl.put(f"/ha/{sid}", json={"max_restart": 5, "comment": "x", "node": "nowhere"})
    assert bad.status_code == 400
    assert "no such node 'nowhere'" in bad.json()["message"]
    assert data(api.get("/cluster/ha/status/current")) == before
