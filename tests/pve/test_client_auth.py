"""PveClient request shapes and auth (respx): token header, ticket login, CSRF, renewal
timing on an injected clock, one re-login after a 401."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from pvewatch.config.types import ClusterConfig
from pvewatch.errors import ConfigError, SourceAuthError, SourceUnreachable
from pvewatch.pve.client import PveClient
from pvewatch.secret import Secret

BASE = "https://pve1:8006/api2/json"
TOKEN = "pvewatch@pve!monitor=0b2c7a9e-3f4d-4c1e-9a8b-7d6e5f4a3b2c"
PASSWORD = "correct horse battery staple"
TICKETS = [f"PVE:root@pam:6A86C55{i}::{'Qk' * 170}{i}A==" for i in range(5)]
CSRFS = [f"6A86C55{i}:JiAqI+QH7EEcWwqgDFAzHQixDUxo6N4yP5wPchto0a{i}" for i in range(5)]
VERSION = {"data": {"version": "9.1.9", "release": "9.1", "repoid": "3f2c1b0a9e8d7c6b"}}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def token_cluster() -> ClusterConfig:
    return ClusterConfig(name="lab", endpoints=("pve1",), token=Secret(TOKEN))


def password_cluster() -> ClusterConfig:
    return ClusterConfig(
        name="lab", endpoints=("pve1",), username="root@pam", password=Secret(PASSWORD)
    )


def client(router: respx.MockRouter, cluster: ClusterConfig, clock: FakeClock) -> PveClient:
    transport = httpx.MockTransport(router.async_handler)
    return PveClient(cluster, transport=transport, clock=clock, min_interval_secs=0)


def ticket_answer(n: int, **extra: object) -> httpx.Response:
    data = {"username": "root@pam", "ticket": TICKETS[n], "CSRFPreventionToken": CSRFS[n]}
    return httpx.Response(200, json={"data": {**data, **extra}})


def form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


@pytest.fixture
def router() -> respx.MockRouter:
    return respx.MockRouter(assert_all_called=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_token_header_and_no_csrf_or_cookie(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    route = router.get(f"{BASE}/version").respond(json=VERSION)
    router.post(f"{BASE}/some/action").respond(json={"data": None})
    async with client(router, token_cluster(), clock) as pve:
        assert await pve.version() == VERSION["data"]
        await pve.call("POST", "/some/action", data={"x": "1"})
    for call in router.calls:
        assert call.request.headers["Authorization"] == f"PVEAPIToken={TOKEN}"
        assert "CSRFPreventionToken" not in call.request.headers
        assert "Cookie" not in call.request.headers
    assert "gzip" in route.calls[0].request.headers["Accept-Encoding"]


async def test_password_login_cookie_and_csrf_only_on_non_get(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    login = router.post(f"{BASE}/access/ticket").mock(return_value=ticket_answer(0))
    get = router.get(f"{BASE}/version").respond(json=VERSION)
    post = router.post(f"{BASE}/some/action").respond(json={"data": None})
    async with client(router, password_cluster(), clock) as pve:
        await pve.version()
        await pve.call("POST", "/some/action")
    assert login.call_count == 1
    sent = login.calls[0].request
    assert form(sent) == {"username": "root@pam", "password": PASSWORD}
    assert "Cookie" not in sent.headers
    assert "CSRFPreventionToken" not in sent.headers
    get_request, post_request = get.calls[0].request, post.calls[0].request
    assert get_request.headers["Cookie"] == f"PVEAuthCookie={TICKETS[0]}"
    assert "CSRFPreventionToken" not in get_request.headers
    assert post_request.headers["Cookie"] == f"PVEAuthCookie={TICKETS[0]}"
    assert post_request.headers["CSRFPreventionToken"] == CSRFS[0]


async def test_ticket_renewed_after_an_hour_with_the_ticket(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    login = router.post(f"{BASE}/access/ticket")
    login.side_effect = [ticket_answer(0), ticket_answer(1)]
    get = router.get(f"{BASE}/version").respond(json=VERSION)
    async with client(router, password_cluster(), clock) as pve:
        await pve.version()
        clock.now += 3599
        await pve.version()
        assert login.call_count == 1
        clock.now += 1
        await pve.version()
    assert login.call_count == 2
    assert form(login.calls[1].request) == {"username": "root@pam", "password": TICKETS[0]}
    cookies = [c.request.headers["Cookie"] for c in get.calls]
    assert cookies == [f"PVEAuthCookie={TICKETS[n]}" for n in (0, 0, 1)]


async def test_refused_renewal_falls_back_to_the_password(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    refused = httpx.Response(401, extensions={"reason_phrase": b"authentication failure"})
    login = router.post(f"{BASE}/access/ticket")
    login.side_effect = [ticket_answer(0), refused, ticket_answer(2)]
    router.get(f"{BASE}/version").respond(json=VERSION)
    async with client(router, password_cluster(), clock) as pve:
        await pve.version()
        clock.now += 3700
        await pve.version()
    passwords = [form(c.request)["password"] for c in login.calls]
    assert passwords == [PASSWORD, TICKETS[0], PASSWORD]


async def test_nearly_expired_ticket_is_replaced_by_a_password_login(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    login = router.post(f"{BASE}/access/ticket")
    login.side_effect = [ticket_answer(0), ticket_answer(1)]
    router.get(f"{BASE}/version").respond(json=VERSION)
    async with client(router, password_cluster(), clock) as pve:
        await pve.version()
        clock.now += 7000  # the daemon slept (e.g. host suspend) past the renewal window
        await pve.version()
    assert [form(c.request)["password"] for c in login.calls] == [PASSWORD, PASSWORD]


async def test_401_leads_to_one_new_login_and_one_retry(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    login = router.post(f"{BASE}/access/ticket")
    login.side_effect = [ticket_answer(0), ticket_answer(1)]
    denied = httpx.Response(401, extensions={"reason_phrase": b"Authentication failed!"})
    get = router.get(f"{BASE}/version")
    get.side_effect = [denied, httpx.Response(200, json=VERSION)]
    async with client(router, password_cluster(), clock) as pve:
        assert await pve.version() == VERSION["data"]
    assert login.call_count == 2
    assert get.call_count == 2
    assert get.calls[1].request.headers["Cookie"] == f"PVEAuthCookie={TICKETS[1]}"


async def test_401_after_new_login_is_an_auth_error(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    login = router.post(f"{BASE}/access/ticket")
    login.side_effect = [ticket_answer(0), ticket_answer(1)]
    denied = httpx.Response(401, extensions={"reason_phrase": b"Authentication failed!"})
    get = router.get(f"{BASE}/version").mock(return_value=denied)
    async with client(router, password_cluster(), clock) as pve:
        with pytest.raises(SourceAuthError, match="401 Authentication failed!"):
            await pve.version()
    assert login.call_count == 2
    assert get.call_count == 2


REFUSED = httpx.Response(
    401,
    json={"data": None, "message": "authentication failure\n"},
    extensions={"reason_phrase": b"authentication failure"},
)


async def test_requests_in_flight_share_one_refused_login(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """The ticket is refused (expired on the server) while the password is refused too:
    the three requests of a poll cost one refused login, not three."""
    login = router.post(f"{BASE}/access/ticket")
    login.side_effect = [ticket_answer(0), REFUSED, ticket_answer(1)]
    router.get(f"{BASE}/nodes").respond(json={"data": []})
    all_sent = asyncio.Barrier(3)

    async def denied(request: httpx.Request) -> httpx.Response:
        await all_sent.wait()  # the three are in flight together
        return httpx.Response(401, extensions={"reason_phrase": b"Authentication failed!"})

    for path in ("/version", "/cluster/tasks", "/cluster/status"):
        router.get(f"{BASE}{path}").mock(side_effect=denied)
    async with client(router, password_cluster(), clock) as pve:
        await pve.call("GET", "/nodes")  # logged in before the poll
        answers = await asyncio.gather(
            pve.version(), pve.tasks(), pve.cluster_status(), return_exceptions=True
        )
        assert all(isinstance(a, SourceAuthError) for a in answers), answers
        assert login.call_count == 2
        # The next poll tries the password again.
        router.get(f"{BASE}/version").respond(json=VERSION)
        assert await pve.version() == VERSION["data"]
    assert login.call_count == 3


async def test_a_401_answered_after_the_refused_login_shares_it(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """/cluster/tasks answers 401 only once the other request's login was refused: it was
    sent before that login, so that refusal is its answer too."""
    tasks_sent = asyncio.Event()
    first: asyncio.Future[dict[str, object]] | None = None

    async def early_401(request: httpx.Request) -> httpx.Response:
        await tasks_sent.wait()
        return httpx.Response(401, extensions={"reason_phrase": b"Authentication failed!"})

    async def late_401(request: httpx.Request) -> httpx.Response:
        tasks_sent.set()
        assert first is not None
        await asyncio.wait([first])  # that request's login has been refused
        return httpx.Response(401, extensions={"reason_phrase": b"Authentication failed!"})

    login = router.post(f"{BASE}/access/ticket")
    login.side_effect = [ticket_answer(0), REFUSED, ticket_answer(1)]
    router.get(f"{BASE}/nodes").respond(json={"data": []})
    router.get(f"{BASE}/version").mock(side_effect=early_401)
    router.get(f"{BASE}/cluster/tasks").mock(side_effect=late_401)
    async with client(router, password_cluster(), clock) as pve:
        await pve.call("GET", "/nodes")
        first = asyncio.ensure_future(pve.version())
        answers = await asyncio.gather(first, pve.tasks(), return_exceptions=True)
    assert [type(a) for a in answers] == [SourceAuthError, SourceAuthError]
    assert "authentication failure" in str(answers[1])
    assert login.call_count == 2


async def test_token_401_is_not_retried(router: respx.MockRouter, clock: FakeClock) -> None:
    denied = httpx.Response(401, extensions={"reason_phrase": b"Authentication failed!"})
    get = router.get(f"{BASE}/version").mock(return_value=denied)
    async with client(router, token_cluster(), clock) as pve:
        with pytest.raises(SourceAuthError):
            await pve.version()
    assert get.call_count == 1


async def test_wrong_password_is_an_auth_error(
    router: respx.MockRouter, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    router.post(f"{BASE}/access/ticket").respond(
        401,
        json={"data": None, "message": "authentication failure\n"},
        extensions={"reason_phrase": b"authentication failure"},
    )
    async with client(router, password_cluster(), clock) as pve:
        with pytest.raises(SourceAuthError, match="authentication failure") as caught:
            await pve.resources()
    assert "/api2/json/access/ticket" in str(caught.value)
    assert PASSWORD not in str(caught.value) + repr(caught.value) + caplog.text


async def test_need_tfa_is_an_auth_error(router: respx.MockRouter, clock: FakeClock) -> None:
    router.post(f"{BASE}/access/ticket").mock(return_value=ticket_answer(0, NeedTFA=1))
    async with client(router, password_cluster(), clock) as pve:
        with pytest.raises(SourceAuthError, match="second factor"):
            await pve.version()


async def test_login_goes_through_failover(router: respx.MockRouter, clock: FakeClock) -> None:
    cluster = ClusterConfig(
        name="lab",
        endpoints=("pve1", "pve2"),
        username="root@pam",
        password=Secret(PASSWORD),
    )
    router.post(f"{BASE}/access/ticket").mock(side_effect=httpx.ConnectError("refused"))
    router.post("https://pve2:8006/api2/json/access/ticket").mock(return_value=ticket_answer(0))
    router.get("https://pve2:8006/api2/json/version").respond(json=VERSION)
    async with client(router, cluster, clock) as pve:
        assert await pve.version() == VERSION["data"]
        assert pve.active_endpoint == "https://pve2:8006"


async def test_login_unreachable_is_unreachable(router: respx.MockRouter, clock: FakeClock) -> None:
    router.post(f"{BASE}/access/ticket").respond(
        596, extensions={"reason_phrase": b"Connection timed out"}
    )
    async with client(router, password_cluster(), clock) as pve:
        with pytest.raises(SourceUnreachable, match="596 Connection timed out"):
            await pve.version()


@pytest.mark.parametrize(
    ("token", "username", "password", "problem"),
    [
        (None, None, None, "needs a token, or a username and a password"),
        (None, "root@pam", None, "needs a token, or a username and a password"),
        ("pvewatch@pve=only-a-secret", None, None, "USER@REALM!TOKENID=SECRET"),
        ("pvewatch@pve!x=sec\nret", None, None, "USER@REALM!TOKENID=SECRET"),
        ("pvewatch!x=secret", None, None, "USER@REALM!TOKENID=SECRET"),
    ],
)
def test_bad_credentials_are_config_errors(
    token: str | None, username: str | None, password: str | None, problem: str
) -> None:
    cluster = ClusterConfig(
        name="lab",
        endpoints=("pve1",),
        token=Secret(token) if token else None,
        username=username,
        password=Secret(password) if password else None,
    )
    with pytest.raises(ConfigError, match=problem) as caught:
        PveClient(cluster, transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    assert "secret" not in str(caught.value).replace("SECRET", "")
