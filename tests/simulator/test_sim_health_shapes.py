"""The health endpoints answer in PVE's shapes: compared with the captured real answers
(and the ones FACTS-health.md built from PVE's code) key by key and type by type."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pvewatch.simulator.server import SimServer
from tests.simulator.conftest import SimFactory
from tests.simulator.shapes import assert_items_like, assert_object_like, captured
from tests.simulator.support import TOKEN_HEADER


def data(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["data"]


def api_for(sim: SimServer) -> httpx.Client:
    return httpx.Client(base_url=sim.url + "/api2/json", headers=TOKEN_HEADER)


def assert_error_like(response: httpx.Response, name: str) -> None:
    """An error answer as the captured one: status line and body (libpve-http-server 5.2)."""
    real = captured(name)
    assert f"HTTP/1.1 {response.status_code} {response.reason_phrase}" == real["_http_status_line"]
    assert response.json() == real["_body_since_libpve-http-server-perl_5.2.0"]


@pytest.mark.parametrize(
    ("version", "name"),
    [
        (8, "synthetic-cluster-ha-status-current-no-ha-pve8.json"),
        (9, "synthetic-cluster-ha-status-current-no-ha-pve9.2.json"),
    ],
)
def test_ha_not_set_up_is_pves_answer(make_sim: SimFactory, version: int, name: str) -> None:
    with api_for(make_sim(guests=0, pve_version=version)) as api:
        assert data(api.get("/cluster/ha/status/current")) == captured(name)["data"]
        manager = data(api.get("/cluster/ha/status/manager_status"))
    assert manager == {"manager_status": {}, "quorum": {"node": "pve1", "quorate": "1"}}


def sid(api: httpx.Client, kind: str) -> str:
    """The HA resource id of the first guest of this type."""
    guests = data(api.get("/cluster/resources", params={"type": "vm"}))
    vmid = min(g["vmid"] for g in guests if g["type"] == kind)
    return f"{'vm' if kind == 'qemu' else 'ct'}:{vmid}"


def test_ha_pve9_rows_like_the_real_capture(api: httpx.Client, ctl: httpx.Client) -> None:
    vm, ct = sid(api, "qemu"), sid(api, "lxc")
    assert ctl.put(f"/ha/{vm}", json={"state": "started", "comment": "test"}).status_code == 200
    assert ctl.put(f"/ha/{ct}", json={"state": "recovery"}).status_code == 200
    ours = data(api.get("/cluster/ha/status/current"))
    real = captured("pegaprox-pve9.2.10-cluster-ha-status-current.json")["data"]
    real += captured("synthetic-cluster-ha-status-current-pve9-fencing.json")["data"]
    assert_items_like(ours, real, group="type")
    assert [r["type"] for r in ours][:3] == ["quorum", "master", "fencing"]
    manager = data(api.get("/cluster/ha/status/manager_status"))
    real_manager = captured("pegaprox-pve9.2.10-cluster-ha-status-manager_status.json")["data"]
    assert set(real_manager) <= set(manager)
    assert_object_like(manager["quorum"], [real_manager["quorum"]])
    for lrm in manager["lrm_status"].values():
        assert_object_like(lrm, list(real_manager["lrm_status"].values()))


def test_ha_pve8_rows_like_pve8(make_sim: SimFactory) -> None:
    sim = make_sim(pve_version=8)
    with api_for(sim) as api, httpx.Client(base_url=sim.url + "/_sim") as ctl:
        ctl.put(f"/ha/{sid(api, 'qemu')}", json={"state": "error", "group": "prefer-pve3"})
        ours = data(api.get("/cluster/ha/status/current"))
    real = captured("synthetic-cluster-ha-status-current-pve8.json")["data"]
    assert_items_like(ours, real, group="type")
    assert "fencing" not in {r["type"] for r in ours}


@pytest.mark.parametrize(
    ("state", "name"),
    [
        ("not_installed", "synthetic-cluster-ceph-status-error-not-installed.json"),
        ("not_initialized", "synthetic-cluster-ceph-status-error-not-initialized.json"),
    ],
)
def test_ceph_not_set_up_errors(
    api: httpx.Client, ctl: httpx.Client, state: str, name: str
) -> None:
    if state != "not_installed":
        assert ctl.put("/ceph", json={"state": state}).status_code == 200
    assert_error_like(api.get("/cluster/ceph/status"), name)
    assert_error_like(api.get("/nodes/pve2/ceph/status"), name)


def test_ceph_status_like_real_ceph(api: httpx.Client, ctl: httpx.Client) -> None:
    real = captured("synthetic-cluster-ceph-status-health-err.json")["data"]
    checks = {
        code: {"severity": c["severity"], "message": c["summary"]["message"]}
        | {"count": c["summary"]["count"], "detail": [d["message"] for d in c["detail"]]}
        | {"muted": c["muted"]}
        for code, c in real["health"]["checks"].items()
    }
    assert ctl.put("/ceph", json={"checks": checks}).status_code == 200
    ours = data(api.get("/cluster/ceph/status"))
    assert ours["health"] == real["health"]  # the same checks give the same health
    go_proxmox = captured("go-proxmox-pve8x-cluster-ceph-status.json")["data"]
    for section in ("osdmap", "monmap", "fsmap"):
        assert_object_like(ours[section], [real[section], go_proxmox[section]])
    assert set(real) <= set(ours)
    assert_items_like(ours["monmap"]["mons"], real["monmap"]["mons"] + go_proxmox["monmap"]["mons"])
    assert_object_like(ours["pgmap"], [real["pgmap"], go_proxmox["pgmap"]])


def test_replication_shapes(api: httpx.Client, ctl: httpx.Client) -> None:
    assert (
        data(api.get("/cluster/replication"))
        == captured("synthetic-cluster-replication-none.json")["data"]
    )
    node = data(api.get("/cluster/resources", params={"type": "vm"}))
    guest = next(g for g in node if g["vmid"] == 101)
    target = "pve2" if guest["node"] != "pve2" else "pve3"
    ctl.put(
        "/replication/101-0",
        json={"target": target, "schedule": "*/5", "rate": 50, "comment": "db to DR"},
    )
    ctl.put(
        "/replication/101-0", json={"fail_count": 4, "error": "command 'x' failed: exit code 255"}
    )
    real_config = captured("synthetic-cluster-replication.json")["data"]
    assert_items_like(data(api.get("/cluster/replication")), real_config)
    one = data(api.get("/cluster/replication/101-0"))
    assert_object_like(one, [captured("synthetic-cluster-replication-id.json")["data"]])
    listed = data(api.get(f"/nodes/{guest['node']}/replication"))
    real_state = captured("synthetic-nodes-replication.json")["data"]
    assert_items_like(listed, real_state)
    status = data(api.get(f"/nodes/{guest['node']}/replication/101-0/status"))
    assert status == listed[0]
    assert_object_like(status, [captured("synthetic-nodes-replication-id-status.json")["data"]])
    assert data(api.get(f"/nodes/{target}/replication")) == []


def test_replication_missing_job_is_pves_500(api: httpx.Client) -> None:
    assert_error_like(
        api.get("/nodes/pve1/replication/999-0/status"),
        "synthetic-nodes-replication-id-status-missing.json",
    )
    assert (
        api.get("/cluster/replication/999-0").json()["message"]
        == "no such replication job '999-0'\n"
    )


@pytest.mark.parametrize(
    ("setup", "name"),
    [
        (None, "synthetic-cluster-config-qdevice-none.json"),
        (
            {"state": "Connected", "last_poll": 1730003595},
            "synthetic-cluster-config-qdevice-connected.json",
        ),
        (
            {"state": "Connect failed", "last_poll": 1730003595},
            "synthetic-cluster-config-qdevice-connect-failed.json",
        ),
    ],
)
def test_qdevice_shapes(
    api: httpx.Client, ctl: httpx.Client, setup: dict[str, Any] | None, name: str
) -> None:
    if setup is not None:
        assert ctl.put("/qdevice", json=setup).status_code == 200
    ours, real = data(api.get("/cluster/config/qdevice")), captured(name)["data"]
    assert set(ours) == set(real)
    assert {k: v for k, v in ours.items() if k != "Last poll call"} == {
        k: v for k, v in real.items() if k != "Last poll call"
    }
    if setup and setup["state"] == "Connect failed":
        assert ours["Last poll call"] == "2024-10-27T04:33:15"  # the synthetic's time, in UTC


def test_certificates_like_pves(api: httpx.Client, ctl: httpx.Client) -> None:
    acme = {"notbefore": 1727000000, "notafter": 1734776000}
    assert ctl.put("/certificates/pve1/pveproxy-ssl.pem", json=acme).status_code == 200
    ours = data(api.get("/nodes/pve1/certificates/info"))
    real = captured("synthetic-nodes-certificates-info.json")["data"]
    assert [c["filename"] for c in ours] == [c["filename"] for c in real]
    for mine, theirs in zip(ours, real, strict=True):
        assert_object_like(mine, [theirs])
        assert len(mine["fingerprint"].split(":")) == 32
    assert [c["filename"] for c in data(api.get("/nodes/pve2/certificates/info"))] == [
        "pve-root-ca.pem",
        "pve-ssl.pem",
    ]


def test_disks_like_pves(api: httpx.Client) -> None:
    real = captured("synthetic-nodes-disks-list.json")["data"]
    real += captured("ansible-community-proxmox-pve9-nodes-disks-list.json")["data"]
    plain = data(api.get("/nodes/pve1/disks/list"))
    assert_items_like(plain, [r for r in real if "bluestore" not in r])
    assert [d["devpath"] for d in plain] == sorted(d["devpath"] for d in plain)
    parts = data(api.get("/nodes/pve1/disks/list", params={"include-partitions": "1"}))
    excerpt = captured("synthetic-nodes-disks-list-include-partitions-excerpt.json")["data"]
    assert_items_like(
        [p for p in parts if p["type"] == "partition"], [e for e in excerpt if "parent" in e]
    )
    sda = [p["devpath"] for p in parts if p["devpath"].startswith("/dev/sda")]
    assert sda == [e["devpath"] for e in excerpt]  # the disk, then its partitions
    assert next(p for p in parts if p["devpath"] == "/dev/sda")["used"] == "partitions"
    assert next(p for p in plain if p["devpath"] == "/dev/sda")["used"] == "BIOS boot"


def test_zfs_like_pves(api: httpx.Client, ctl: httpx.Client) -> None:
    assert_items_like(
        data(api.get("/nodes/pve1/disks/zfs")), captured("synthetic-nodes-disks-zfs.json")["data"]
    )
    ctl.put("/zfs/pve1", json={"installed": 0})
    assert_error_like(
        api.get("/nodes/pve1/disks/zfs"), "synthetic-nodes-disks-zfs-not-installed.json"
    )
    ctl.delete("/zfs/pve2/rpool")
    assert (
        data(api.get("/nodes/pve2/disks/zfs"))
        == captured("synthetic-nodes-disks-zfs-none.json")["data"]
    )


def test_backup_shapes(api: httpx.Client, ctl: httpx.Client) -> None:
    real_jobs = captured("synthetic-cluster-backup.json")["data"]
    real_jobs += captured("ansible-community-proxmox-cluster-backup.json")["data"]
    ctl.put(
        "/backup-jobs/backup-0f9e8d7c-6b5a",
        json={"schedule": "sat 02:00", "vmid": "101,102", "enabled": 0}
        | {"storage": "local", "mode": "stop", "mailnotification": "failure"},
    )
    jobs = data(api.get("/cluster/backup"))
    for job in jobs:
        assert_object_like(job, real_jobs)
    assert data(api.get("/cluster/backup-info/not-backed-up")) == []
    ctl.put("/backup-jobs/backup-5f0c2a1e-7b3d", json={"exclude": "100,104"})
    uncovered = data(api.get("/cluster/backup-info/not-backed-up"))
    assert_items_like(
        uncovered, captured("synthetic-cluster-backup-info-not-backed-up.json")["data"]
    )
    assert sorted(g["vmid"] for g in uncovered) == [100, 104]
    content = data(api.get("/nodes/pve1/storage/local/content", params={"content": "backup"}))
    assert_items_like(content, captured("synthetic-nodes-storage-content-backup-dir.json")["data"])
