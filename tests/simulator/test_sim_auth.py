"""Auth as PVE does it: API tokens, ticket login, cookie, CSRF, renewal, expiry."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from pvewatch.simulator.auth import TICKET_LIFETIME_SECS
from pvewatch.simulator.server import SimServer
from tests.simulator.conftest import SimFactory
from tests.simulator.support import TOKEN, FakeClock

USER, PASSWORD = "root@pam", "s3cret-pw"


@pytest.fixture
def login_sim(make_sim: SimFactory) -> SimServer:
    return make_sim(user=USER, password=PASSWORD)


def login(client: httpx.Client, password: str = PASSWORD, **form: str) -> httpx.Response:
    return client.post("/access/ticket", data={"username": USER, "password": password} | form)


def client_for(sim: SimServer, **headers: str) -> httpx.Client:
    return httpx.Client(base_url=sim.url + "/api2/json", headers=headers)


@pytest.mark.parametrize(
    "header",
    [
        "PVEAPIToken=" + TOKEN,
        "PVEAPIToken " + TOKEN,
        "PVEAPIToken=" + TOKEN.replace("@", "%40"),  # the value is URL-unescaped
    ],
)
def test_token_forms_accepted(sim: SimServer, header: str) -> None:
    with client_for(sim, Authorization=header) as client:
        assert client.get("/version").status_code == 200


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "No ticket"),
        ({"Authorization": "PVEAPIToken=" + TOKEN[:-1] + "x"}, "Authentication failed!"),
        ({"Authorization": "PVEAPIToken=other@pve!x=" + TOKEN[-36:]}, "Authentication failed!"),
        ({"Cookie": "PVEAuthCookie=PVE:root@pam:6A86C553::forged=="}, "Authentication failed!"),
    ],
)
def test_refusals_are_401_with_empty_body(
    sim: SimServer, headers: dict[str, str], reason: str
) -> None:
    with client_for(sim, **headers) as client:
        response = client.get("/cluster/resources")
    assert (response.status_code, response.reason_phrase, response.content) == (401, reason, b"")
    assert "content-type" not in response.headers
    assert response.headers["connection"] == "close"


def test_refusal_is_delayed_when_asked(make_sim: SimFactory) -> None:
    sim = make_sim(auth_fail_delay_secs=0.3)
    with client_for(sim) as client:
        started = time.monotonic()
        assert client.get("/version").status_code == 401
    assert time.monotonic() - started >= 0.3


def test_ticket_login_shapes_and_cookie_use(login_sim: SimServer) -> None:
    with client_for(login_sim) as client:
        data = login(client).json()["data"]
        assert re.fullmatch(r"PVE:root@pam:[0-9A-F]{8}::[A-Za-z0-9+/]{342}==", data["ticket"])
        assert re.fullmatch(r"[0-9A-F]{8}:[A-Za-z0-9+/]{43}", data["CSRFPreventionToken"])
        assert data["username"] == USER
        assert "cap" in data
        client.cookies.set("PVEAuthCookie", data["ticket"])
        assert client.get("/cluster/resources").status_code == 200
    with client_for(login_sim, Authorization="PVEAuthCookie=" + data["ticket"]) as client:
        assert client.get("/cluster/tasks").status_code == 200


def test_wrong_password_is_401_authentication_failure_with_json(login_sim: SimServer) -> None:
    with client_for(login_sim) as client:
        response = login(client, password="wrong")
    assert (response.status_code, response.reason_phrase) == (401, "authentication failure")
    assert response.json() == {"data": None, "message": "authentication failure\n"}


def test_json_login_and_realm_parameter(login_sim: SimServer) -> None:
    with client_for(login_sim) as client:
        as_json = client.post("/access/ticket", json={"username": USER, "password": PASSWORD})
        with_realm = login(client, username="root", realm="pam")
    assert as_json.status_code == 200
    assert with_realm.status_code == 200


def test_csrf_is_required_on_non_get_with_a_ticket(login_sim: SimServer) -> None:
    with client_for(login_sim) as client:
        data = login(client).json()["data"]
        client.cookies.set("PVEAuthCookie", data["ticket"])
        refused = client.post("/cluster/resources")
        assert (refused.status_code, refused.reason_phrase) == (
            401,
            "Permission denied - invalid csrf token",
        )
        accepted = client.post(
            "/cluster/resources", headers={"CSRFPreventionToken": data["CSRFPreventionToken"]}
        )
    assert accepted.status_code == 501  # past auth: no POST handler there


def test_renewal_and_expiry(login_sim: SimServer, clock: FakeClock) -> None:
    with client_for(login_sim) as client:
        first = login(client).json()["data"]["ticket"]
        clock.advance(TICKET_LIFETIME_SECS - 60)
        renewed = login(client, password=first)
        assert renewed.status_code == 200
        second = renewed.json()["data"]["ticket"]
        clock.advance(120)  # the first ticket is now past 2 h, the renewed one is not
        assert _get_with(client, first).status_code == 401
        assert _get_with(client, second).status_code == 200
        assert login(client, password=first).status_code == 401  # expired: no renewal


def _get_with(client: httpx.Client, ticket: str) -> httpx.Response:
    client.cookies.clear()
    return client.get("/version", headers={"Cookie": f"PVEAuthCookie={ticket}"})


def test_no_credentials_configured_means_open(make_sim: SimFactory) -> None:
    sim = make_sim(tokens=())
    with client_for(sim) as client:
        assert client.get("/cluster/resources").status_code == 200
        assert login(client, password="anything").status_code == 200
