"""The webhook sink: the messages of the sink's format, signed per Standard Webhooks
(`signing`), each sent with one HTTP request; the answer says whether it arrived and
whether a retry could help (`response`). Retries, order and grouping are delivery's job.

A request is an httpx `Request` handed straight to the sink's transport, aiohttp's pool
underneath (`net.aio_transport`), without httpx's client around it: that client's request
building and cookie jar were a fifth of a delivery's CPU (bench/RESULTS.md). So nothing is
kept between deliveries, cookies included; the headers on the wire are those httpx's
client sent (`DEFAULT_HEADERS`). httpx's errors become SinkError here.
The URL may carry a token (Slack, Discord, ...) and headers may carry credentials, so
logs and errors name the receiver by scheme, host and port only (`where`), and never
quote an exception's text, which may hold the URL. Redirects are not followed. The
answer's body is read up to 64 KiB, and the whole exchange, body included, ends after
`timeout_secs`, so a receiver that never stops answering cannot hold delivery.

`WEBHOOK` is the row of the table of sink types: the options (`webhook_options`), the
builder, `check-config --connect` (a TCP connection and TLS handshake, no request) and
`test-sink` (the sample sent for real, every answer shown).
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from urllib.parse import urlsplit

import httpx

from pvewatch import __version__
from pvewatch.config.types import Config, TlsConfig
from pvewatch.errors import SinkError, SinkGone
from pvewatch.model import Event
from pvewatch.net.aio_transport import AiohttpTransport
from pvewatch.net.probe import Check, ProbeError, host_port, reach
from pvewatch.net.tls import build_ssl_context
from pvewatch.secret import Secret
from pvewatch.sinks import signing
from pvewatch.sinks.base import SinkContext, SinkType, Tried
from pvewatch.sinks.formats.base import Formatter, Payload
from pvewatch.sinks.formats.table import build_formatter
from pvewatch.sinks.log import escape_controls
from pvewatch.sinks.response import answer_error
from pvewatch.sinks.webhook_options import WEBHOOK_KEYS, WebhookOptions, webhook_options

MAX_ANSWER_BYTES = 64 * 1024
USER_AGENT = f"pvewatch/{__version__}"
# What httpx's client added to every request, sent as before (the format's, the
# configured and the signature's headers come after and win).
DEFAULT_HEADERS = MappingProxyType(
    {
        "accept": "*/*",
        "accept-encoding": "gzip, deflate",
        "connection": "keep-alive",
        "user-agent": USER_AGENT,
    }
)
_SHOWN_ANSWER_BYTES = 300  # of an answer's body, by `test-sink`


@dataclass(frozen=True, slots=True)
class Answer:
    """What the receiver said to one message."""

    message_id: str
    status: int  # as the receiver sent it
    effective_status: int  # as the format reads it (Teams: 200 with "429" in the body)
    body: bytes  # at most MAX_ANSWER_BYTES
    error: SinkError | None  # None: delivered


class WebhookSink:
    """Sends each event (or burst, for a grouping format) as the format's messages."""

    def __init__(
        self,
        name: str,
        *,
        url: Secret,
        formatter: Formatter,
        method: str = "POST",
        headers: Mapping[str, Secret] | None = None,
        timeout_secs: float = 10.0,
        tls: TlsConfig | None = None,
        secrets: Sequence[Secret] = (),
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.groups = formatter.groups
        self._url = url
        self._formatter = formatter
        self._method = method
        self._headers = dict(headers or {})
        self._timeout = timeout_secs
        self._timeouts = httpx.Timeout(timeout_secs).as_dict()  # connect, read, write, pool
        self._tls = tls or TlsConfig()
        self._keys = [signing.decode_secret(s.reveal()) for s in secrets]
        self._clock = clock
        self._transport = transport
        self.where = _where(url)
        self._sender: httpx.AsyncBaseTransport | None = None  # made at the first send
        self._target: httpx.URL | None = None  # the URL parsed once (~0.1 ms a request)
        self._closed = False

    @classmethod
    def build(cls, name: str, options: WebhookOptions, context: SinkContext) -> WebhookSink:
        """The sink of `options` (`webhook_options` checked them); opens nothing."""
        return cls(
            name,
            url=options.url,
            formatter=build_formatter(name, options.format),
            method=options.method,
            headers=options.headers,
            timeout_secs=options.timeout_secs,
            tls=options.tls,
            secrets=options.secret,
        )

    async def send(self, events: Sequence[Event]) -> None:
        for payload in self._formatter.render(events):
            answer = await self.exchange(payload, events)
            if answer.error is not None:
                raise answer.error

    async def try_send(self, events: Sequence[Event]) -> list[Answer]:
        """What `send` does, returning every answer instead of raising at the first
        refusal (`pvewatch test-sink`). Not reaching the receiver still raises."""
        return [await self.exchange(p, events) for p in self._formatter.render(events)]

    async def exchange(self, payload: Payload, events: Sequence[Event]) -> Answer:
        """One signed request and its answer; SinkError when no answer came."""
        if self._closed:
            raise SinkError(f"webhook sink {self.name!r} is closed", retryable=False)
        msg_id = signing.message_id(payload.event_ids or [e.id for e in events])
        now = self._clock()
        # Later sources win, whatever the case of their names: the format's headers, the
        # configured ones, then the signature (which covers exactly this body).
        layers = [
            DEFAULT_HEADERS,
            {"content-type": payload.content_type},
            payload.headers,
            {name: value.reveal() for name, value in self._headers.items()},
            signing.sign(self._keys, msg_id, int(now), payload.body),
        ]
        headers = {name.lower(): value for layer in layers for name, value in layer.items()}
        status, body, retry_after = await self._request(headers, payload.body)
        effective = self._formatter.effective_status(status, body)
        when = datetime.fromtimestamp(now, UTC)
        return Answer(
            msg_id, status, effective, body, answer_error(effective, retry_after, when, self.where)
        )

    async def _request(self, headers: dict[str, str], body: bytes) -> tuple[int, bytes, str | None]:
        sender = self._transport_once()
        try:
            request = httpx.Request(
                self._method,
                self._target_url(),
                headers=headers,
                content=body,
                extensions={"timeout": self._timeouts},
            )
            async with asyncio.timeout(self._timeout):
                response = await sender.handle_async_request(request)
                try:
                    answer = await _read_at_most(response, MAX_ANSWER_BYTES)
                finally:
                    await response.aclose()
                return response.status_code, answer, response.headers.get("retry-after")
        except TimeoutError:
            reason = f"no complete answer within {self._timeout:g}s"
        except httpx.HTTPError as e:
            reason = http_reason(e)
        raise SinkError(f"{self.where}: {reason}", retryable=True)

    def _target_url(self) -> httpx.URL:
        if self._target is None:
            self._target = httpx.URL(self._url.reveal())
        return self._target

    def _transport_once(self) -> httpx.AsyncBaseTransport:
        if self._sender is None:
            what = f"webhook sink {self.name!r}"
            self._sender = self._transport or aiohttp_transport(what, self._tls)
        return self._sender

    async def aclose(self) -> None:
        self._closed = True
        sender, self._sender = self._sender, None
        if sender is not None:
            await sender.aclose()


def http_client(
    what: str, tls: TlsConfig, timeout_secs: float, transport: httpx.AsyncBaseTransport | None
) -> httpx.AsyncClient:
    """The client a sink sends with: its TLS settings, no redirects, no proxy from the
    environment, its requests sent through aiohttp unless the tests give a `transport`.
    SinkError (retried) when `tls.ca_file` cannot be loaded."""
    return httpx.AsyncClient(
        transport=transport or aiohttp_transport(what, tls),
        timeout=httpx.Timeout(timeout_secs),
        follow_redirects=False,
        trust_env=False,
    )


def aiohttp_transport(what: str, tls: TlsConfig) -> AiohttpTransport:
    """The transport of `tls` (redirects, proxies and cookies: none); SinkError (retried)
    when `tls.ca_file` cannot be loaded."""
    try:
        context = build_ssl_context(tls)
    except (OSError, ssl.SSLError) as e:
        raise SinkError(
            f"{what}: cannot load tls.ca_file: {type(e).__name__}", retryable=True
        ) from None
    return AiohttpTransport(context)


def _where(url: Secret) -> str:
    """The receiver as logs may show it: scheme://host[:port], nothing that may be secret."""
    parts = urlsplit(url.reveal())
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}"


async def _read_at_most(response: httpx.Response, limit: int) -> bytes:
    """The first `limit` bytes of the body; the rest is never read."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


def http_reason(e: httpx.HTTPError) -> str:
    """Why a request got no answer, without the exception's text (it may hold the URL)."""
    if isinstance(e, httpx.TimeoutException):
        return f"timed out ({type(e).__name__})"
    cause: BaseException | None = e
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS: {cause.verify_message or 'certificate verify failed'}"
        if isinstance(cause, OSError) and (cause.errno or cause.strerror):
            # By its number: asyncio words a refused connect "Connect call failed (addr)".
            return f"cannot connect: {os.strerror(cause.errno) if cause.errno else cause.strerror}"
        cause = cause.__cause__ or cause.__context__
    if isinstance(e, httpx.ConnectError):
        return "cannot connect"
    if isinstance(e, httpx.RemoteProtocolError):
        return "the connection broke or the answer was not HTTP"
    return type(e).__name__


async def check_webhook(options: WebhookOptions, config: Config) -> list[Check]:
    """`check-config --connect`: a TCP connection to the receiver and, for https, the TLS
    handshake with the sink's own TLS settings. Only host:port is shown: webhook URLs
    often carry their secret in the path."""
    try:
        host, port, tls = host_port(options.url.reveal())
    except ValueError:
        return [Check("fail", "url", "not an http(s) URL")]
    try:
        context = build_ssl_context(options.tls) if tls else None
    except (OSError, ssl.SSLError) as exc:
        return [Check("fail", "tls", f"cannot load the CA file: {exc}")]
    try:
        await reach(host, port, tls=context, timeout_secs=options.timeout_secs)
    except ProbeError as exc:
        return [Check("fail", "connect", str(exc))]
    how = "TLS handshake done" if tls else "plain http"
    return [Check("ok", "connect", f"{host}:{port} reachable ({how}; no request sent)")]


async def try_webhook(sink: WebhookSink, event: Event) -> Tried:
    """`test-sink`: the sample through the real format, signing and HTTP path; every
    message's answer, and whether it was delivered."""
    answers = await sink.try_send([event])
    lines = [line for answer in answers for line in _shown(sink, answer)]
    return Tried(all(a.error is None for a in answers), tuple(lines))


def _shown(sink: WebhookSink, answer: Answer) -> list[str]:
    status = f"HTTP {answer.status}"
    if answer.effective_status != answer.status:
        status += f" (read as {answer.effective_status})"
    verdict = "delivered" if answer.error is None else f"NOT delivered: {answer.error}"
    retry = ""
    if isinstance(answer.error, SinkGone):
        retry = " (pvewatch would disable the sink)"
    elif answer.error is not None:
        retry = " (would be retried)" if answer.error.retryable else " (would not be retried)"
    shown = answer.body[:_SHOWN_ANSWER_BYTES].decode("utf-8", "replace")
    more = " …" if len(answer.body) > _SHOWN_ANSWER_BYTES else ""
    return [
        f"sink {sink.name}: {sink.where} answered {status}: {verdict}{retry}",
        f"  webhook-id: {answer.message_id}",
        f"  answer: {escape_controls(shown) or '(empty)'}{more}",
    ]


WEBHOOK = SinkType(
    options=WebhookOptions,
    keys=WEBHOOK_KEYS,
    parse=webhook_options,
    build=WebhookSink.build,
    check=check_webhook,
    test=try_webhook,
)
