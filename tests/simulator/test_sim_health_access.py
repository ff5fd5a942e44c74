"""Who may read the health endpoints (PVE's privileges and its 403), what an offline or
unknown node answers, and the generic override of any GET path."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pvewatch.simulator.server import SimServer
from tests.simulator.support import TOKEN

USERID = TOKEN.rpartition("=")[0]


def data(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["data"]


def grant(ctl: httpx.Client, acl: dict[str, list[str]]) -> None:
    assert ctl.put(f"/acl/{USERID}", json=acl).status_code == 200


@pytest.mark.parametrize(
    ("path", "denied"),
    [
        ("/cluster/ha/status/current", "Permission check failed (/, Sys.Audit)"),
        ("/cluster/ha/status/manager_status", "Permission check failed (/, Sys.Audit)"),
        ("/cluster/ceph/status", "Permission check failed (/, Sys.Audit|Datastore.Audit)"),
        ("/nodes/pve2/ceph/status", "Permission check failed (/, Sys.Audit|Datastore.Audit)"),
        ("/cluster/config/qdevice", "Permission check failed (/, Sys.Audit)"),
        ("/nodes/pve1/disks/list", "Permission check failed"),
        ("/nodes/pve1/disks/zfs", "Permission check failed (/, Sys.Audit)"),
        ("/cluster/backup", "Permission check failed (/, Sys.Audit)"),
        ("/cluster/backup-info/not-backed-up", "Permission check failed (/, Sys.Audit)"),
        (
            "/nodes/pve1/storage/local/content",
            "Permission check failed (/storage/local, Datastore.Audit|Datastore.AllocateSpace)",
        ),
    ],
)
def test_a_token_without_the_privilege_gets_pves_403(
    api: httpx.Client, ctl: httpx.Client, path: str, denied: str
) -> None:
    grant(ctl, {"/vms": ["VM.Audit"]})
    answer = api.get(path)
    assert (answer.status_code, answer.reason_phrase) == (403, denied)
    assert answer.json() == {"data": None, "message": denied + "\n"}
    ctl.delete(f"/acl/{USERID}")  # back to every privilege
    assert api.get(path).status_code in (200, 500)  # 500: Ceph is not installed


@pytest.mark.parametrize(
    "path",
    ["/cluster/replication", "/nodes/pve1/replication", "/nodes/pve1/certificates/info"],
)
def test_endpoints_any_user_may_read(api: httpx.Client, ctl: httpx.Client, path: str) -> None:
    grant(ctl, {})
    assert api.get(path).status_code == 200


def test_auditor_privileges_read_every_health_endpoint(
    api: httpx.Client, ctl: httpx.Client
) -> None:
    """The PVEAuditor role on / (Sys.Audit, Datastore.Audit, VM.Audit...) reads them all."""
    grant(ctl, {"/": ["Sys.Audit", "Datastore.Audit", "VM.Audit", "Pool.Audit", "SDN.Audit"]})
    for path in (
        "/cluster/ha/status/current",
        "/cluster/config/qdevice",
        "/nodes/pve1/disks/list",
        "/nodes/pve1/disks/zfs",
        "/cluster/backup",
        "/cluster/backup-info/not-backed-up",
    ):
        assert api.get(path).status_code == 200, path
    # ...but sees no backup volume: listing one takes Datastore.Allocate, or
    # Datastore.AllocateSpace and VM.Backup (pve-storage check_volume_access).
    assert data(api.get("/nodes/pve1/storage/local/content")) == []
    grant(ctl, {"/": ["Datastore.AllocateSpace", "VM.Backup"]})
    assert data(api.get("/nodes/pve1/storage/local/content"))
    grant(ctl, {"/storage/local": ["Datastore.Allocate", "Datastore.Audit"]})
    assert data(api.get("/nodes/pve1/storage/local/content"))


def test_disks_list_allows_sys_audit_on_the_node(api: httpx.Client, ctl: httpx.Client) -> None:
    grant(ctl, {"/nodes/pve1": ["Sys.Audit"]})
    assert api.get("/nodes/pve1/disks/list").status_code == 200
    assert api.get("/nodes/pve2/disks/list").status_code == 403


def test_guests_without_vm_audit_are_left_out(api: httpx.Client, ctl: httpx.Client) -> None:
    vms = data(api.get("/cluster/resources", params={"type": "vm"}))
    a, b = sorted(vms, key=lambda g: g["vmid"])[:2]
    for guest in (a, b):
        target = "pve2" if guest["node"] != "pve2" else "pve3"
        ctl.put(f"/replication/{guest['vmid']}-0", json={"target": target})
    ctl.put("/backup-jobs/backup-5f0c2a1e-7b3d", json={"exclude": f"{a['vmid']},{b['vmid']}"})
    # The deepest ACL path decides: /vms/<b> without VM.Audit hides b.
    grant(ctl, {"/": ["Sys.Audit", "VM.Audit"], f"/vms/{b['vmid']}": ["VM.Console"]})
    assert [j["guest"] for j in data(api.get("/cluster/replication"))] == [a["vmid"]]
    assert [g["vmid"] for g in data(api.get("/cluster/backup-info/not-backed-up"))] == [a["vmid"]]
    one = api.get(f"/cluster/replication/{b['vmid']}-0")
    assert one.status_code == 403
    assert one.reason_phrase == f"Permission check failed (/vms/{b['vmid']}, VM.Audit)"


def test_root_at_pam_may_do_anything(api: httpx.Client, ctl: httpx.Client) -> None:
    assert ctl.put("/acl/root@pam", json={}).status_code == 200
    grant(ctl, {})
    assert api.get("/cluster/backup").status_code == 403
    assert ctl.get("/acl").json() == {"root@pam": {}, USERID: {}}


def test_offline_node_answers_595_through_the_proxy(
    sim: SimServer, api: httpx.Client, ctl: httpx.Client
) -> None:
    ctl.patch("/resources/node/pve3", json={"status": "offline"})
    for path in (
        "/nodes/pve3/replication",
        "/nodes/pve3/certificates/info",
        "/nodes/pve3/disks/list",
        "/nodes/pve3/disks/zfs",
        "/nodes/pve3/ceph/status",
        "/nodes/pve3/storage/local/content",
    ):
        answer = api.get(path)
        assert (answer.status_code, answer.reason_phrase, answer.content) == (
            595,
            "No route to host",
            b"",
        ), path
        assert "content-type" not in answer.headers
    assert data(api.get("/nodes/pve1/disks/list"))
    assert data(api.get("/cluster/backup"))
    ctl.patch("/resources/node/pve3", json={"status": "online"})
    assert data(api.get("/nodes/pve3/disks/list"))


def test_unknown_node_is_a_hostname_lookup_failure(api: httpx.Client) -> None:
    answer = api.get("/nodes/pve9/disks/list")
    assert answer.status_code == 500
    assert answer.reason_phrase.startswith("hostname lookup 'pve9' failed")


def test_privilege_is_checked_before_the_node_is_reached(
    api: httpx.Client, ctl: httpx.Client
) -> None:
    ctl.patch("/resources/node/pve3", json={"status": "offline"})
    grant(ctl, {})
    assert api.get("/nodes/pve3/disks/zfs").status_code == 403


@pytest.mark.parametrize(
    ("params", "error"),
    [
        (
            {"include-partitions": "maybe"},
            {"include-partitions": "type check ('boolean') failed - got 'maybe'"},
        ),
        (
            {"type": "ssd"},
            {
                "type": "value 'ssd' does not have a value in the enumeration "
                "'unused, journal_disks'"
            },
        ),
        ({"skipsmart": "2"}, {"skipsmart": "type check ('boolean') failed - got '2'"}),
    ],
)
def test_disk_list_parameters_are_checked(
    api: httpx.Client, params: dict[str, str], error: dict[str, str]
) -> None:
    answer = api.get("/nodes/pve1/disks/list", params=params)
    assert answer.status_code == 400
    assert answer.json()["errors"] == error


def test_override_serves_exact_data_until_removed(api: httpx.Client, ctl: httpx.Client) -> None:
    exact = {"health": {"status": "HEALTH_WARN", "checks": {}, "mutes": []}, "fsid": "x"}
    assert (
        ctl.put("/paths", json={"path": "/cluster/ceph/status", "data": exact}).status_code == 200
    )
    ctl.put("/paths", json={"path": "/api2/json/nodes/pve2/replication", "data": [{"id": "1-0"}]})
    assert api.get("/cluster/ceph/status").json() == {"data": exact}
    assert api.get("/nodes/pve2/replication", params={"guest": "1"}).json() == {
        "data": [{"id": "1-0"}]
    }
    assert data(api.get("/nodes/pve1/replication")) == []
    assert ctl.request("DELETE", "/paths", json={"path": "/cluster/ceph/status"}).status_code == 200
    assert api.get("/cluster/ceph/status").status_code == 500
    assert ctl.delete("/paths").json() == {"removed": ["/nodes/pve2/replication"]}
    assert data(api.get("/nodes/pve2/replication")) == []


def test_override_errors_are_shaped_like_pves(api: httpx.Client, ctl: httpx.Client) -> None:
    ctl.put(
        "/paths",
        json={
            "path": "/cluster/ha/status/current",
            "status": 501,
            "message": "Method 'GET /cluster/ha/status/current' not implemented",
        },
    )
    ctl.put(
        "/paths",
        json={"path": "/nodes/pve1/disks/zfs", "status": 595, "message": "Connection refused"},
    )
    ctl.put(
        "/paths",
        json={
            "path": "/nodes/pve1/disks/list",
            "status": 400,
            "message": "Parameter verification failed.\n",
            "errors": {"type": "bad"},
        },
    )
    answer = api.get("/cluster/ha/status/current")
    assert (answer.status_code, answer.reason_phrase) == (
        501,
        "Method 'GET /cluster/ha/status/current' not implemented",
    )
    assert answer.json() == {
        "data": None,
        "message": "Method 'GET /cluster/ha/status/current' not implemented",
    }
    bare = api.get("/nodes/pve1/disks/zfs")
    assert (bare.status_code, bare.reason_phrase, bare.content) == (595, "Connection refused", b"")
    assert api.get("/nodes/pve1/disks/list").json()["errors"] == {"type": "bad"}
    assert ctl.get("/paths").json()["/nodes/pve1/disks/zfs"] == {
        "status": 595,
        "message": "Connection refused",
    }


def test_override_needs_authentication(sim: SimServer, ctl: httpx.Client) -> None:
    ctl.put("/paths", json={"path": "/cluster/backup", "data": []})
    with httpx.Client(base_url=sim.url + "/api2/json") as anonymous:
        assert anonymous.get("/cluster/backup").status_code == 401
