"""The webhook sink: request shapes and signatures (respx), what each answer means, and
what it never shows (the URL's token, header values, secrets)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import respx

from pvewatch.config.types import SinkConfig, TlsConfig
from pvewatch.errors import SinkError, SinkGone
from pvewatch.secret import Secret
from pvewatch.sinks import signing, webhook
from pvewatch.sinks.base import SinkContext
from pvewatch.sinks.formats.base import FormatOptions
from pvewatch.sinks.formats.table import build_formatter
from pvewatch.sinks.table import SINK_TYPES
from pvewatch.sinks.webhook import MAX_ANSWER_BYTES, USER_AGENT, WebhookSink
from pvewatch.sinks.webhook_options import WebhookOptions

from .contract import check_sink_contract, guest_stopped, sample_events

URL = "https://hooks.example/services/T0KEN-IN-PATH"
KEY = b"k" * 32
WHSEC = "whsec_" + base64.b64encode(KEY).decode()
OLD_KEY = b"o" * 24
NOW = 1_800_000_000
FAR = "Wed, 21 Oct 2099 07:28:00 GMT"


def sink(fmt: str = "native", **kw: object) -> WebhookSink:
    options: dict[str, object] = {"secrets": [Secret(WHSEC)], "clock": lambda: NOW, **kw}
    return WebhookSink(
        "hook",
        url=Secret(URL),
        formatter=build_formatter("hook", FormatOptions(fmt)),
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
def mock(monkeypatch: pytest.MonkeyPatch) -> Iterator[respx.MockRouter]:
    """Receivers as respx routes: the sink's transport is built as it ships (a bad
    tls.ca_file still fails), then the router answers in its place."""
    real = webhook.aiohttp_transport

    def answered_by_router(what: str, tls: TlsConfig) -> httpx.AsyncBaseTransport:
        real(what, tls)
        return httpx.MockTransport(router.async_handler)

    with respx.mock(assert_all_called=False, using=None) as router:
        monkeypatch.setattr(webhook, "aiohttp_transport", answered_by_router)
        yield router


async def test_a_native_message_is_signed_per_standard_webhooks(mock: respx.MockRouter) -> None:
    route = mock.post(URL).respond(204)
    event = guest_stopped()
    await sink(headers={"X-Team": Secret("infra")}).send([event])
    request = route.calls.last.request
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == USER_AGENT
    assert request.headers["x-team"] == "infra"
    assert request.headers["webhook-id"] == event.id
    assert request.headers["webhook-timestamp"] == str(NOW)
    assert signing.verify(KEY, dict(request.headers), request.content, now=NOW)
    body = json.loads(request.content)
    assert body == {
        "type": event.type,
        "timestamp": "2026-11-28T01:02:03Z",
        "data": event.to_dict(),
    }


async def test_configured_headers_win_over_the_format_s_whatever_their_case(
    mock: respx.MockRouter,
) -> None:
    route = mock.post(URL).respond(200)
    await sink(headers={"Content-Type": Secret("text/plain")}).send([guest_stopped()])
    request = route.calls.last.request
    assert request.headers.get_list("content-type") == ["text/plain"]


async def test_put_and_one_signature_per_secret_while_rotating(mock: respx.MockRouter) -> None:
    route = mock.put(URL).respond(200)
    old = Secret("whsec_" + base64.b64encode(OLD_KEY).decode())
    await sink(method="PUT", secrets=[Secret(WHSEC), old]).send([guest_stopped()])
    headers = dict(route.calls.last.request.headers)
    assert len(headers["webhook-signature"].split(" ")) == 2
    body = route.calls.last.request.content
    assert signing.verify(KEY, headers, body, now=NOW)
    assert signing.verify(OLD_KEY, headers, body, now=NOW)


async def test_without_a_secret_there_is_no_signature_but_still_an_id(
    mock: respx.MockRouter,
) -> None:
    route = mock.post(URL).respond(200)
    await sink(secrets=[]).send([guest_stopped()])
    headers = route.calls.last.request.headers
    assert "webhook-signature" not in headers
    assert headers["webhook-id"] == guest_stopped().id


async def test_a_retry_keeps_the_id_and_signs_its_own_timestamp(mock: respx.MockRouter) -> None:
    route = mock.post(URL)
    route.side_effect = [httpx.Response(503), httpx.Response(200)]
    clock = iter([NOW, NOW + 7])
    s = sink(clock=lambda: next(clock))
    with pytest.raises(SinkError):
        await s.send([guest_stopped()])
    await s.send([guest_stopped()])
    first, second = (c.request for c in route.calls)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == guest_stopped().id
    assert (first.headers["webhook-timestamp"], second.headers["webhook-timestamp"]) == (
        str(NOW),
        str(NOW + 7),
    )
    assert signing.verify(KEY, dict(second.headers), second.content, now=NOW + 7)


async def test_a_burst_to_a_chat_format_is_one_message_with_a_derived_id(
    mock: respx.MockRouter,
) -> None:
    route = mock.post(URL).respond(200, text="ok")
    burst = sample_events()
    s = sink("slack")
    assert s.groups
    await s.send(burst)
    request = route.calls.last.request
    assert len(route.calls) == 1
    assert request.headers["webhook-id"] == signing.message_id([e.id for e in burst])
    assert signing.verify(KEY, dict(request.headers), request.content, now=NOW)


@pytest.mark.parametrize(
    ("response", "kind", "retry_after"),
    [
        (httpx.Response(200), None, None),
        (httpx.Response(500), "retry", None),
        (httpx.Response(503, headers={"Retry-After": "12"}), "retry", 12.0),
        (httpx.Response(429, headers={"Retry-After": FAR}), "retry", 7 * 86400.0),
        (httpx.Response(408), "retry", None),
        (httpx.Response(400), "dead", None),
        (httpx.Response(404), "dead", None),
        (httpx.Response(410), "gone", None),
        (httpx.Response(301, headers={"Location": "https://elsewhere.example/"}), "dead", None),
    ],
)  # fmt: skip
async def test_what_each_answer_means(
    mock: respx.MockRouter, response: httpx.Response, kind: str | None, retry_after: float | None
) -> None:
    route = mock.post(URL).mock(return_value=response)
    mock.route(host="elsewhere.example").respond(200)
    error: SinkError | None = None
    try:
        await sink().send([guest_stopped()])
    except SinkError as e:
        error = e
    assert len(mock.calls) == 1  # a redirect is not followed
    assert route.called
    if kind is None:
        assert error is None
        return
    assert error is not None
    got = "gone" if isinstance(error, SinkGone) else "retry" if error.retryable else "dead"
    assert (got, error.retry_after_secs) == (kind, retry_after)
    assert str(error).startswith(f"https://hooks.example answered HTTP {response.status_code}")


async def test_teams_throttling_answered_as_200_is_retried(mock: respx.MockRouter) -> None:
    mock.post(URL).respond(200, text='{"error": {"code": "429", "message": "throttled"}}')
    with pytest.raises(SinkError) as e:
        await sink("teams").send([guest_stopped()])
    assert e.value.retryable
    assert "HTTP 429" in str(e.value)


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (httpx.ConnectError(f"cannot reach {URL}"), "cannot connect"),
        (httpx.ConnectTimeout(f"timeout {URL}"), "timed out"),
        (httpx.ReadTimeout(f"timeout {URL}"), "timed out"),
        (httpx.RemoteProtocolError(f"garbage from {URL}"), "the connection broke"),
    ],
)
async def test_no_answer_is_retryable_and_never_shows_the_url(
    mock: respx.MockRouter, failure: Exception, reason: str
) -> None:
    mock.post(URL).mock(side_effect=failure)
    with pytest.raises(SinkError) as e:
        await sink().send([guest_stopped()])
    assert e.value.retryable
    assert str(e.value).startswith(f"https://hooks.example: {reason}")
    assert "T0KEN" not in str(e.value)


async def test_the_answer_is_read_up_to_64_kib(mock: respx.MockRouter) -> None:
    mock.post(URL).respond(200, content=b"x" * (MAX_ANSWER_BYTES * 4))
    [answer] = await sink().try_send([guest_stopped()])
    assert len(answer.body) == MAX_ANSWER_BYTES
    assert (answer.status, answer.error) == (200, None)


async def test_an_answer_that_never_ends_times_out(mock: respx.MockRouter) -> None:
    async def trickle() -> AsyncIterator[bytes]:
        while True:
            yield b"."
            await asyncio.sleep(0.01)

    mock.post(URL).respond(200, content=trickle())
    with pytest.raises(SinkError) as e:
        await asyncio.wait_for(sink(timeout_secs=0.2).send([guest_stopped()]), timeout=5)
    assert e.value.retryable
    assert "no complete answer within 0.2s" in str(e.value)


async def test_try_send_returns_refusals_instead_of_raising(mock: respx.MockRouter) -> None:
    mock.post(URL).respond(410, text="gone for good")
    [answer] = await sink().try_send([guest_stopped()])
    assert (answer.status, answer.body, answer.message_id) == (
        410,
        b"gone for good",
        guest_stopped().id,
    )
    assert isinstance(answer.error, SinkGone)


async def test_a_missing_ca_file_is_a_retryable_error(tmp_path: Path) -> None:
    s = sink(tls=TlsConfig(ca_file=tmp_path / "gone.pem"))
    with pytest.raises(SinkError, match=r"cannot load tls\.ca_file") as e:
        await s.send([guest_stopped()])
    assert e.value.retryable


async def test_send_after_aclose_is_refused(mock: respx.MockRouter) -> None:
    mock.post(URL).respond(200)
    s = sink()
    await s.send([guest_stopped()])
    await s.aclose()
    await s.aclose()
    with pytest.raises(SinkError) as e:
        await s.send([guest_stopped()])
    assert not e.value.retryable


@pytest.mark.parametrize("fmt", ["native", "cloudevents", "alertmanager", "slack", "teams"])
async def test_the_sink_contract(mock: respx.MockRouter, fmt: str) -> None:
    mock.post(URL).respond(200)
    await check_sink_contract(lambda: sink(fmt))


async def test_the_contract_when_the_receiver_fails(mock: respx.MockRouter) -> None:
    mock.post(URL).mock(side_effect=httpx.ConnectError("refused"))
    await check_sink_contract(lambda: sink("discord"))


async def test_built_from_config(mock: respx.MockRouter) -> None:
    route = mock.post(URL).respond(200)
    options = WebhookOptions(url=Secret(URL), secret=(Secret(WHSEC),), timeout_secs=3)
    s = SINK_TYPES["webhook"].open(SinkConfig("hook", "webhook", options), SinkContext()).sink
    assert isinstance(s, WebhookSink)
    assert (s.name, s.groups, s.where) == ("hook", False, "https://hooks.example")
    await s.send([guest_stopped()])
    request = route.calls.last.request
    assert signing.verify(KEY, dict(request.headers), request.content, now=request_time(request))


def request_time(request: httpx.Request) -> int:
    return int(request.headers["webhook-timestamp"])


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("https://u:p@hooks.example:8443/x?token=1", "https://hooks.example:8443"),
        ("http://[::1]:9000/hook", "http://[::1]:9000"),
        ("https://discord.com/api/webhooks/1/T0KEN", "https://discord.com"),
    ],
)
def test_logs_name_the_receiver_by_scheme_host_and_port_only(url: str, where: str) -> None:
    s = WebhookSink("h", url=Secret(url), formatter=build_formatter("h", FormatOptions()))
    assert s.where == where
