"""The /_sim/ control API: resources, tasks, faults, stats, and captured real answers."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from pvewatch.simulator.server import SimServer
from tests.simulator.support import CAPTURED, FakeClock, rows_by_id

CAPTURES = sorted(CAPTURED.glob("*cluster-resources*.json"))


def test_captures_are_present() -> None:
    assert len(CAPTURES) >= 10, f"captured fixtures missing under {CAPTURED}"


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_captured_answers_are_served_back_as_is(
    path: Path, api: httpx.Client, ctl: httpx.Client
) -> None:
    captured = json.loads(path.read_text())
    assert ctl.put("/resources", json=captured).json() == {"count": len(captured["data"])}
    assert api.get("/cluster/resources").json() == captured
    vms = api.get("/cluster/resources", params={"type": "vm"}).json()["data"]
    assert vms == [r for r in captured["data"] if r["type"] in ("qemu", "lxc")]


def test_put_accepts_a_bare_array_and_delete_restores_the_simulation(
    api: httpx.Client, ctl: httpx.Client
) -> None:
    simulated = rows_by_id(api.get("/cluster/resources"))
    ctl.put("/resources", json=[{"id": "node/x", "type": "node", "node": "x", "status": "online"}])
    assert list(rows_by_id(api.get("/cluster/resources"))) == ["node/x"]
    assert ctl.get("/resources").json()[0]["id"] == "node/x"
    ctl.delete("/resources").raise_for_status()
    assert rows_by_id(api.get("/cluster/resources")).keys() == simulated.keys()


def test_patch_merges_fields_and_null_removes(api: httpx.Client, ctl: httpx.Client) -> None:
    ctl.patch("/resources/qemu/100", json={"lock": "backup", "tags": "a;b", "x-note": 1})
    row = rows_by_id(api.get("/cluster/resources"))["qemu/100"]
    assert (row["lock"], row["tags"], row["x-note"]) == ("backup", "a;b", 1)
    ctl.patch("/resources/qemu/100", json={"lock": None})
    assert "lock" not in rows_by_id(api.get("/cluster/resources"))["qemu/100"]


def test_patch_guest_status_and_node(api: httpx.Client, ctl: httpx.Client) -> None:
    ctl.patch("/resources/qemu/100", json={"status": "stopped", "node": "pve2"})
    row = rows_by_id(api.get("/cluster/resources"))["qemu/100"]
    assert (row["status"], row["node"], row["uptime"], row["netin"]) == ("stopped", "pve2", 0, 0)


@pytest.mark.parametrize("path", ["/resources//pool/production", "/resources/pool/production"])
def test_pool_ids_with_and_without_the_leading_slash(
    path: str, api: httpx.Client, ctl: httpx.Client
) -> None:
    assert ctl.patch(path, json={"comment": "x"}).status_code == 200
    assert rows_by_id(api.get("/cluster/resources"))["/pool/production"]["comment"] == "x"
    ctl.delete(path).raise_for_status()
    assert "/pool/production" not in rows_by_id(api.get("/cluster/resources"))


def test_delete_and_bad_edits(api: httpx.Client, ctl: httpx.Client) -> None:
    ctl.delete("/resources/storage/pve1/local").raise_for_status()
    assert "storage/pve1/local" not in rows_by_id(api.get("/cluster/resources"))
    missing = ctl.patch("/resources/qemu/424242", json={"tags": "x"})
    assert missing.status_code == 400
    assert "qemu/424242" in missing.json()["message"]
    wrong_type = ctl.patch("/resources/qemu/100", json={"maxmem": "lots"})
    assert wrong_type.status_code == 400


def test_create_guest_through_post(
    clock: FakeClock, sim: SimServer, api: httpx.Client, ctl: httpx.Client
) -> None:
    ctl.post("/resources", json={"id": "qemu/777", "node": "pve2"}).raise_for_status()
    assert rows_by_id(api.get("/cluster/resources"))["qemu/777"]["lock"] == "create"
    clock.advance(sim.cluster.cycle_secs)
    assert rows_by_id(api.get("/cluster/resources"))["qemu/777"]["status"] == "stopped"


def test_finish_a_running_task(api: httpx.Client, ctl: httpx.Client) -> None:
    spec = {"type": "qmstop", "id": "100", "node": "pve1", "user": "alice@pve"}
    upid = ctl.post("/tasks", json=spec).json()["upid"]
    assert upid.startswith("UPID:pve1:")
    assert upid.endswith(":qmstop:100:alice@pve:")
    ctl.post("/tasks", json={"upid": upid, "status": "OK"}).raise_for_status()
    status = api.get(f"/nodes/pve1/tasks/{upid}/status").json()["data"]
    assert status["exitstatus"] == "OK"


@pytest.mark.parametrize(
    ("code", "reason", "body"),
    [
        (500, "Internal Server Error", True),
        (595, "No route to host", False),
        (401, "Authentication failed!", False),
    ],
)
def test_status_faults(
    code: int, reason: str, body: bool, api: httpx.Client, ctl: httpx.Client
) -> None:
    ctl.post("/faults", json={"kind": "status", "code": code, "count": 2})
    for _ in range(2):
        response = api.get("/cluster/resources")
        assert (response.status_code, response.reason_phrase) == (code, reason)
        assert bool(response.content) == body
    assert api.get("/cluster/resources").status_code == 200


def test_delay_fault(api: httpx.Client, ctl: httpx.Client) -> None:
    ctl.post("/faults", json={"kind": "delay", "seconds": 0.3, "count": 1})
    started = time.monotonic()
    assert api.get("/version").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_garbage_fault(api: httpx.Client, ctl: httpx.Client) -> None:
    ctl.post("/faults", json={"kind": "garbage", "count": 2})
    for _ in range(2):
        response = api.get("/cluster/resources")
        assert response.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(response.content)


@pytest.mark.parametrize(
    "body", ['{"data": []}', '{"data": {"id": 1}}', "[]", "", "\u00e9 not json"]
)
def test_body_fault_answers_that_body(body: str, api: httpx.Client, ctl: httpx.Client) -> None:
    ctl.post("/faults", json={"kind": "body", "body": body, "count": 2}).raise_for_status()
    for _ in range(2):
        response = api.get("/cluster/resources")
        assert (response.status_code, response.text) == (200, body)
    assert api.get("/cluster/resources").json()["data"]
    ctl.post("/faults", json={"kind": "body", "body": "{}", "code": 502}).raise_for_status()
    assert api.get("/version").status_code == 502
    assert ctl.post("/faults", json={"kind": "body", "body": 5}).status_code == 400


def test_reset_fault_drops_the_connection(api: httpx.Client, ctl: httpx.Client) -> None:
    ctl.post("/faults", json={"kind": "reset", "count": 1})
    with pytest.raises(httpx.TransportError):
        api.get("/version")
    assert api.get("/version").status_code == 200


def test_faults_can_target_a_path_and_be_cleared(api: httpx.Client, ctl: httpx.Client) -> None:
    ctl.post("/faults", json={"kind": "status", "code": 500, "count": 5, "path": "/cluster/tasks"})
    assert api.get("/version").status_code == 200
    assert api.get("/cluster/tasks").status_code == 500
    assert ctl.delete("/faults").json() == []
    assert api.get("/cluster/tasks").status_code == 200
    assert ctl.post("/faults", json={"kind": "nonsense"}).status_code == 400


def test_stats_count_api_requests_per_path(api: httpx.Client, ctl: httpx.Client) -> None:
    ctl.delete("/stats")
    api.get("/version")
    api.get("/version")
    api.get("/cluster/resources", params={"type": "vm"})
    stats = ctl.get("/stats").json()
    assert stats["paths"] == {"/api2/json/version": 2, "/api2/json/cluster/resources": 1}
    assert stats["total"] == 3


def test_control_api_needs_no_auth_and_faults_skip_it(sim: SimServer) -> None:
    with httpx.Client(base_url=sim.url + "/_sim") as ctl:
        ctl.post("/faults", json={"kind": "reset", "count": 3})
        assert ctl.get("/resources").status_code == 200
        assert len(ctl.get("/faults").json()) == 1
