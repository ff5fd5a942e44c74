"""The PVE API as served on a real socket: envelope, filters, errors, tasks, wire habits."""

from __future__ import annotations

import socket

import httpx
import pytest

from pvewatch.simulator.server import SimServer
from tests.simulator.conftest import SimFactory
from tests.simulator.support import TOKEN_HEADER, FakeClock, rows_by_id

BAD_PARAMS = "Parameter verification failed."
ENUM = "'vm, storage, node, sdn'"


def test_version_envelope_and_headers(api: httpx.Client) -> None:
    response = api.get("/version")
    assert response.json() == {
        "data": {"version": "9.1.9", "release": "9.1", "repoid": "3f2c1b0a9e8d7c6b"}
    }
    assert response.headers["content-type"] == "application/json;charset=UTF-8"
    assert response.headers["server"] == "pve-api-daemon/3.0"


@pytest.mark.parametrize(
    ("kind", "types"),
    [
        (None, {"pool", "qemu", "lxc", "node", "storage", "network"}),
        ("vm", {"qemu", "lxc"}),
        ("node", {"node"}),
        ("storage", {"storage"}),
        ("sdn", set()),  # PVE >= 9.0.12 reports zones as `network`
    ],
)
def test_type_filter(api: httpx.Client, kind: str | None, types: set[str]) -> None:
    params = {"type": kind} if kind else {}
    rows = rows_by_id(api.get("/cluster/resources", params=params | {"_dc": "123"}))
    assert {r["type"] for r in rows.values()} == types


def test_pve8_reports_sdn_and_no_memhost(make_sim: SimFactory) -> None:
    sim = make_sim(pve_version=8)
    with httpx.Client(base_url=sim.url + "/api2/json", headers=TOKEN_HEADER) as api:
        sdn = rows_by_id(api.get("/cluster/resources", params={"type": "sdn"}))
        vms = rows_by_id(api.get("/cluster/resources", params={"type": "vm"}))
        assert api.get("/version").json()["data"]["release"] == "8.4"
    assert sdn["sdn/pve1/localnetwork"] == {
        "id": "sdn/pve1/localnetwork",
        "type": "sdn",
        "sdn": "localnetwork",
        "node": "pve1",
        "status": "ok",
    }
    assert all("memhost" not in row for row in vms.values())


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        (
            {"type": "qemu"},
            {"type": "value 'qemu' does not have a value in the enumeration " + ENUM},
        ),
        (
            {"foo": "1"},
            {
                "foo": "property is not defined in schema and the schema does not allow "
                "additional properties"
            },
        ),
    ],
)
def test_bad_parameters_get_pve_400(
    api: httpx.Client, params: dict[str, str], errors: dict[str, str]
) -> None:
    response = api.get("/cluster/resources", params=params)
    assert (response.status_code, response.reason_phrase) == (400, BAD_PARAMS)
    assert response.json() == {"data": None, "message": BAD_PARAMS + "\n", "errors": errors}
    assert response.headers["connection"] == "close"


def test_unknown_path_is_501_with_message(api: httpx.Client) -> None:
    response = api.get("/foo/bar")
    assert (response.status_code, response.reason_phrase) == (
        501,
        "Method 'GET /foo/bar' not implemented",
    )
    assert response.json()["message"] == "Method 'GET /foo/bar' not implemented"


def test_cluster_status(api: httpx.Client) -> None:
    entries = api.get("/cluster/status").json()["data"]
    cluster = next(e for e in entries if e["type"] == "cluster")
    assert (cluster["nodes"], cluster["quorate"]) == (3, 1)
    nodes = [e for e in entries if e["type"] == "node"]
    assert sorted(e["id"] for e in nodes) == ["node/pve1", "node/pve2", "node/pve3"]
    assert all(e["online"] == 1 and e["level"] == "" for e in nodes)


def test_task_status_and_log(sim: SimServer, api: httpx.Client, ctl: httpx.Client) -> None:
    spec = {"type": "qmigrate", "id": "100", "node": "pve1", "user": "ops@pve!ci"}
    log = ["starting migration", "migration aborted"]
    upid = ctl.post("/tasks", json=spec | {"status": "migration aborted", "log": log})
    upid_text = upid.json()["upid"]
    status = api.get(f"/nodes/pve1/tasks/{upid_text}/status").json()["data"]
    assert status["status"] == "stopped"
    assert status["exitstatus"] == "migration aborted"
    assert (status["user"], status["tokenid"]) == ("ops@pve", "ci")
    page = api.get(f"/nodes/pve1/tasks/{upid_text}/log", params={"start": 1, "limit": 5}).json()
    assert page == {
        "data": [
            {"n": 2, "t": "migration aborted"},
            {"n": 3, "t": "TASK ERROR: migration aborted"},
        ],
        "total": 3,
    }
    listed = {r["upid"]: r for r in api.get("/cluster/tasks").json()["data"]}
    assert listed[upid_text]["status"] == "migration aborted"
    assert "pstart" not in listed[upid_text]


def test_running_task_has_pid_and_no_status(api: httpx.Client, ctl: httpx.Client) -> None:
    upid = ctl.post("/tasks", json={"type": "vzdump", "id": "", "node": "pve2"}).json()
    row = next(r for r in api.get("/cluster/tasks").json()["data"] if r["upid"] == upid["upid"])
    assert "pid" in row
    assert "status" not in row
    assert "endtime" not in row
    status = api.get(f"/nodes/pve2/tasks/{upid['upid']}/status").json()["data"]
    assert status["status"] == "running"
    assert "exitstatus" not in status


@pytest.mark.parametrize(
    ("upid", "error"),
    [
        ("nonsense", "unable to parse worker upid"),
        ("UPID:pve1:00000001:00000002:00000003:qmstart:1:root@pam:", "no such task"),
    ],
)
def test_bad_upids(api: httpx.Client, upid: str, error: str) -> None:
    response = api.get(f"/nodes/pve1/tasks/{upid}/status")
    assert response.status_code == 400
    assert response.json()["errors"] == {"upid": error}


def test_offline_node_endpoints_answer_595_empty(api: httpx.Client, ctl: httpx.Client) -> None:
    ctl.patch("/resources/node/pve3", json={"status": "offline"}).raise_for_status()
    response = api.get("/nodes/pve3/tasks/UPID:pve3:1:2:3:x::root@pam:/status")
    assert (response.status_code, response.reason_phrase, response.content) == (
        595,
        "No route to host",
        b"",
    )
    assert api.get("/cluster/resources").status_code == 200


def test_unknown_node_is_a_500_hostname_lookup(api: httpx.Client) -> None:
    response = api.get("/nodes/nosuch/tasks/x/status")
    assert response.status_code == 500
    assert response.reason_phrase.startswith("hostname lookup 'nosuch' failed")


def test_large_bodies_are_gzipped_small_ones_not(sim: SimServer) -> None:
    url = sim.url + "/api2/json"
    with httpx.Client(headers=TOKEN_HEADER | {"Accept-Encoding": "gzip"}) as client:
        big = client.get(url + "/cluster/resources")
        small = client.get(url + "/version")
    assert big.headers["content-encoding"] == "gzip"
    assert big.num_bytes_downloaded < len(big.content)  # it really came compressed
    assert "content-encoding" not in small.headers
    with httpx.Client(headers=TOKEN_HEADER | {"Accept-Encoding": "identity"}) as client:
        plain = client.get(url + "/cluster/resources")
    assert "content-encoding" not in plain.headers
    assert plain.json() == big.json()


def test_keep_alive_until_an_error_closes(sim: SimServer) -> None:
    host, port = sim.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        auth = TOKEN_HEADER["Authorization"]
        request = f"GET /api2/json/version HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n"
        conn.sendall(request.encode() * 2)
        first = _read_answers(conn, 2)
        assert first.count(b"HTTP/1.1 200 OK") == 2
        conn.sendall(b"GET /api2/json/version HTTP/1.1\r\nHost: x\r\n\r\n")
        rest = _read_until_closed(conn)
    assert rest.startswith(b"HTTP/1.1 401 No ticket\r\n")
    assert b"Connection: close" in rest


def _read_answers(conn: socket.socket, count: int) -> bytes:
    data = b""
    while data.count(b'"repoid"') < count:
        chunk = conn.recv(65536)
        assert chunk, "closed early"
        data += chunk
    return data


def _read_until_closed(conn: socket.socket) -> bytes:
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    return data


def test_counters_follow_the_ten_second_metrics_cycle(
    clock: FakeClock, sim: SimServer, api: httpx.Client
) -> None:
    clock.now = 1_787_217_240.0  # on a cycle boundary
    guest = next(g.id for g in sim.cluster.guests.values() if g.status == "running")
    first = rows_by_id(api.get("/cluster/resources"))[guest]["uptime"]
    clock.advance(9)
    assert rows_by_id(api.get("/cluster/resources"))[guest]["uptime"] == first
    clock.advance(1)
    assert rows_by_id(api.get("/cluster/resources"))[guest]["uptime"] == first + 10
