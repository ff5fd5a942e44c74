"""PveClient error mapping, failover and spacing (respx). Every error names the endpoint
and the path and never holds a secret."""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from pvewatch.config.types import ClusterConfig, TlsConfig
from pvewatch.errors import (
    ConfigError,
    SourceAuthError,
    SourceBadResponse,
    SourceError,
    SourceUnreachable,
)
from pvewatch.pve.client import PveClient
from pvewatch.secret import Secret

TOKEN = "pvewatch@pve!monitor=0b2c7a9e-3f4d-4c1e-9a8b-7d6e5f4a3b2c"
SECRET_PART = TOKEN.rsplit("=", 1)[1]
PASSWORD = "s3cr3t-passw0rd"
TICKET = "PVE:root@pam:6A86C553::" + "Zm9v" * 85 + "==="
CSRF = "6A86C553:JiAqI+QH7EEcWwqgDFAzHQixDUxo6N4yP5wPchto0ao"
URL = "https://pve1:8006/api2/json/cluster/resources"
ROWS = [{"id": "qemu/100", "type": "qemu", "vmid": 100, "template": 0}]


def reason(status: int, phrase: str, **kwargs: Any) -> httpx.Response:
    return httpx.Response(status, extensions={"reason_phrase": phrase.encode()}, **kwargs)


def make(router: respx.MockRouter, *endpoints: str, token: bool = True, **kwargs: Any) -> PveClient:
    if token:
        cluster = ClusterConfig(name="lab", endpoints=endpoints, token=Secret(TOKEN))
    else:
        cluster = ClusterConfig(
            name="lab", endpoints=endpoints, username="root@pam", password=Secret(PASSWORD)
        )
    kwargs.setdefault("min_interval_secs", 0)
    return PveClient(cluster, transport=httpx.MockTransport(router.async_handler), **kwargs)


@pytest.fixture
def router() -> respx.MockRouter:
    return respx.MockRouter(assert_all_called=False)


ERROR_CASES: list[tuple[str, Callable[[], Any], type[SourceError], str]] = [
    ("595", lambda: reason(595, "No route to host"), SourceUnreachable, "595 No route to host"),
    (
        "596",
        lambda: reason(596, "Connection timed out"),
        SourceUnreachable,
        "596 Connection timed out",
    ),
    (
        "500",
        lambda: reason(500, "hostname lookup 'x' failed"),
        SourceUnreachable,
        "500 hostname lookup",
    ),
    ("503 plain", lambda: httpx.Response(503), SourceUnreachable, "503 Service Unavailable"),
    (
        "connect",
        lambda: httpx.ConnectError("refused"),
        SourceUnreachable,
        "cannot connect: refused",
    ),
    ("read", lambda: httpx.ReadError("reset by peer"), SourceUnreachable, "reading: reset by peer"),
    ("timeout", lambda: httpx.ReadTimeout("slow"), SourceUnreachable, "timed out after 10 s"),
    (
        "401",
        lambda: reason(401, "Authentication failed!"),
        SourceAuthError,
        "401 Authentication failed!",
    ),
    (
        "403 reason",
        lambda: reason(403, "Permission check failed (/, Sys.Audit)"),
        SourceAuthError,
        "missing privilege Sys.Audit on /",
    ),
    (
        "403 message",
        lambda: httpx.Response(
            403,
            json={"data": None, "message": "Permission check failed (/nodes/pve1, Sys.Audit)\n"},
        ),
        SourceAuthError,
        "missing privilege Sys.Audit on /nodes/pve1",
    ),
    (
        "400",
        lambda: reason(400, "Parameter verification failed.", json={"data": None}),
        SourceBadResponse,
        "400 Parameter verification failed.",
    ),
    (
        "not json",
        lambda: httpx.Response(200, text="<html>hi</html>"),
        SourceBadResponse,
        "not JSON",
    ),
    ("empty", lambda: httpx.Response(200), SourceBadResponse, "not JSON"),
    ("no data", lambda: httpx.Response(200, json={"total": 3}), SourceBadResponse, "no `data`"),
    ("json list", lambda: httpx.Response(200, json=[1]), SourceBadResponse, "no `data`"),
    ("data null", lambda: httpx.Response(200, json={"data": None}), SourceBadResponse, "is null"),
    ("data dict", lambda: httpx.Response(200, json={"data": {}}), SourceBadResponse, "not a list"),
    (
        "item str",
        lambda: httpx.Response(200, json={"data": ["x"]}),
        SourceBadResponse,
        "item 0 is str",
    ),
    (
        "item no id",
        lambda: httpx.Response(200, json={"data": [*ROWS, {"type": "qemu"}]}),
        SourceBadResponse,
        "item 1 has no string `id`",
    ),
    (
        "deep json",
        lambda: httpx.Response(200, content=b'{"data":' + b"[" * 100000 + b"]" * 100000 + b"}"),
        SourceBadResponse,
        "not JSON",
    ),
    (
        "bad gzip",
        lambda: httpx.Response(
            200, stream=httpx.ByteStream(b"not gzip"), headers={"Content-Encoding": "gzip"}
        ),
        SourceBadResponse,
        "undecodable body",
    ),
    ("redirect", lambda: httpx.Response(302, headers={"Location": "/x"}), SourceBadResponse, "302"),
]


@pytest.mark.parametrize(
    ("answer", "error", "text"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
@pytest.mark.parametrize("token", [True, False], ids=["token", "password"])
async def test_error_mapping_never_leaks_secrets(
    router: respx.MockRouter,
    caplog: pytest.LogCaptureFixture,
    answer: Callable[[], Any],
    error: type[SourceError],
    text: str,
    token: bool,
) -> None:
    caplog.set_level(logging.DEBUG)
    login = {"ticket": TICKET, "CSRFPreventionToken": CSRF, "username": "root@pam"}
    router.post("https://pve1:8006/api2/json/access/ticket").respond(json={"data": login})

    def respond(request: httpx.Request) -> httpx.Response:
        result = answer()
        if isinstance(result, Exception):
            raise result
        assert isinstance(result, httpx.Response)
        return result

    router.get(URL).mock(side_effect=respond)
    async with make(router, "pve1", token=token) as pve:
        with pytest.raises(error) as caught:
            await pve.resources()
    message = str(caught.value)
    assert text in message
    assert message.startswith("https://pve1:8006: GET /api2/json/cluster/resources: ")
    assert caught.value.endpoint == "https://pve1:8006"
    shown = message + repr(caught.value) + repr(caught.value.args) + caplog.text
    for secret in (SECRET_PART, PASSWORD, TICKET, CSRF):
        assert secret not in shown


async def test_secret_echoed_by_server_is_scrubbed(router: respx.MockRouter) -> None:
    router.get(URL).mock(return_value=reason(500, f"bad header {TOKEN}"))
    async with make(router, "pve1") as pve:
        with pytest.raises(SourceUnreachable) as caught:
            await pve.resources()
    assert SECRET_PART not in str(caught.value)
    assert "bad header ***" in str(caught.value)


async def test_failover_order_and_remembering(router: respx.MockRouter) -> None:
    a = router.get("https://a:8006/api2/json/version").mock(side_effect=httpx.ConnectError("x"))
    b = router.get("https://b:8006/api2/json/version").mock(return_value=reason(503, "busy"))
    c = router.get("https://c:8006/api2/json/version").respond(json={"data": {"v": 1}})
    async with make(router, "a", "b", "c") as pve:
        assert pve.active_endpoint == "https://a:8006"
        await pve.version()
        assert (a.call_count, b.call_count, c.call_count) == (1, 1, 1)
        assert pve.active_endpoint == "https://c:8006"
        await pve.version()
        assert (a.call_count, b.call_count, c.call_count) == (1, 1, 2)
        c.mock(side_effect=httpx.ConnectError("x"))
        a.mock(return_value=httpx.Response(200, json={"data": {"v": 2}}))
        assert await pve.version() == {"v": 2}  # wraps around: c, then a
        assert pve.active_endpoint == "https://a:8006"


async def test_retry_is_bounded_to_one_try_per_endpoint(router: respx.MockRouter) -> None:
    routes = [
        router.get(f"https://{h}:8006/api2/json/version").mock(return_value=reason(595, "down"))
        for h in "abc"
    ]
    async with make(router, "a", "b", "c") as pve:
        with pytest.raises(SourceUnreachable, match="all 3 endpoints failed") as caught:
            await pve.version()
    assert [r.call_count for r in routes] == [1, 1, 1]
    for host in "abc":
        assert f"https://{host}:8006: GET /api2/json/version: 595 down" in str(caught.value)


async def test_auth_errors_do_not_fail_over(router: respx.MockRouter) -> None:
    a = router.get("https://a:8006/api2/json/version").mock(return_value=reason(403, "no"))
    b = router.get("https://b:8006/api2/json/version").respond(json={"data": {}})
    async with make(router, "a", "b") as pve:
        with pytest.raises(SourceAuthError):
            await pve.version()
    assert (a.call_count, b.call_count) == (1, 0)


async def test_gzip_body_and_booleans_either_way(router: respx.MockRouter) -> None:
    rows = [{"id": "qemu/1", "type": "qemu", "template": True, "shared": 0}]
    body = gzip.compress(json.dumps({"data": rows}).encode())
    router.get(URL).respond(content=body, headers={"Content-Encoding": "gzip"})
    async with make(router, "pve1") as pve:
        assert await pve.resources() == rows


async def test_resources_type_filter_and_task_paths(router: respx.MockRouter) -> None:
    upid = "UPID:pve1:00019C2E:0B3B125C:6A86C553:qmstart:100:root@pam:"
    res = router.get(URL, params={"type": "vm"}).respond(json={"data": ROWS})
    task = f"https://pve1:8006/api2/json/nodes/pve1/tasks/{upid.replace(':', '%3A')}"
    status = router.get(f"{task}/status").respond(json={"data": {"status": "running"}})
    lines = [{"n": 1, "t": "starting"}, {"n": 2, "t": "TASK OK"}]
    log = router.get(f"{task}/log").respond(json={"data": lines, "total": 2})
    async with make(router, "pve1") as pve:
        assert await pve.resources("vm") == ROWS
        assert await pve.task_status("pve1", upid) == {"status": "running"}
        assert await pve.task_log("pve1", upid, start=0, limit=0) == ["starting", "TASK OK"]
    assert res.call_count == status.call_count == 1
    assert dict(log.calls[0].request.url.params) == {"start": "0", "limit": "0"}


async def test_requests_are_spaced(router: respx.MockRouter) -> None:
    router.get("https://pve1:8006/api2/json/version").respond(json={"data": {}})
    sleeps: list[float] = []
    now = [100.0]

    async def sleep(secs: float) -> None:
        sleeps.append(secs)

    async with make(
        router, "pve1", clock=lambda: now[0], sleep=sleep, min_interval_secs=0.05
    ) as pve:
        await pve.version()
        await pve.version()
        await pve.version()
        now[0] += 1.0
        await pve.version()
    assert sleeps == pytest.approx([0.05, 0.10])


@pytest.mark.parametrize(
    ("written", "endpoint"),
    [
        ("pve1", "https://pve1:8006"),
        ("pve1.example.com:8443", "https://pve1.example.com:8443"),
        ("10.0.0.11", "https://10.0.0.11:8006"),
        ("[fd00::11]", "https://[fd00::11]:8006"),
        ("https://pve1:8006/", "https://pve1:8006"),
        ("https://pve1:8006/api2/json/", "https://pve1:8006"),
        # The config's rule (watch.yaml.example): https without a port means :8006.
        ("https://pve.example.com", "https://pve.example.com:8006"),
        ("https://proxy:443/pve", "https://proxy:443/pve"),
    ],
)
def test_endpoint_forms(router: respx.MockRouter, written: str, endpoint: str) -> None:
    assert make(router, written).active_endpoint == endpoint


@pytest.mark.parametrize("written", ["ftp://pve1", "https://", "https://u:p@pve1:8006"])
def test_bad_endpoints_are_config_errors(router: respx.MockRouter, written: str) -> None:
    with pytest.raises(ConfigError, match="endpoint"):
        make(router, written)


def test_bad_tls_settings_are_config_errors(tmp_path: Any) -> None:
    for tls, key in [
        (TlsConfig(fingerprints=("AB:CD",)), "tls.fingerprints"),
        (TlsConfig(ca_file=tmp_path / "missing.pem"), "tls.ca_file"),
    ]:
        cluster = ClusterConfig(name="lab", endpoints=("pve1",), token=Secret(TOKEN), tls=tls)
        with pytest.raises(ConfigError, match=key):
            PveClient(cluster)
