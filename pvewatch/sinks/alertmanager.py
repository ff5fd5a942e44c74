"""The Alertmanager sink (`type: alertmanager`): problems pushed to Alertmanager's API
(`POST /api/v2/alerts`) of every configured URL, so an HA pair each gets every alert.
The alerts themselves are `am_alerts`'s.

- A problem that opens a condition is an open alert: after every URL took it, it is kept
  in the store (`sink_state`, by fingerprint) and pushed again every `resend_secs` with a
  fresh `endsAt`, by `run` (the daemon runs it beside delivery), and at once after a
  restart. The event that resolves it ends it (`endsAt` = the resolution's time, the
  problem's `startsAt`) and it is forgotten. One whose condition the rules closed
  without this sink hearing of it (`send_resolved: false`, a silence, a resource gone)
  is ended at the next resend (`am_alerts.ended`).
- Answers, per URL, as for webhooks (`response.answer_error`): 2xx taken; 5xx, 408, 429,
  timeouts, connection and TLS errors retried; 400 (Alertmanager refused the alert) and
  other 4xx dead at once with Alertmanager's answer, for `pvewatch deliveries`/`replay`.
  A send is delivered only when every URL took it; a retry pushes to each again
  (Alertmanager merges an alert it already has).
- Pushes and resends hold one lock, so a resend never pushes an alert that a resolution
  just ended.

`ALERTMANAGER` is the row: options, builder, `check-config --connect` (GET
/api/v2/status of each URL: nothing is pushed), `test-sink` (a test alert that resolves
itself after resend_secs) and `run`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from pvewatch import __version__
from pvewatch.config.types import Config
from pvewatch.errors import PvewatchError, SinkError
from pvewatch.model import Event, format_time
from pvewatch.net.probe import Check
from pvewatch.sinks.am_alerts import (
    AM_KEYS,
    API_PATH,
    Alert,
    AlertmanagerOptions,
    alert_of,
    am_options,
    ended,
    keeps_open,
)
from pvewatch.sinks.base import SinkContext, SinkType, Tried
from pvewatch.sinks.response import answer_error
from pvewatch.sinks.webhook import http_client, http_reason
from pvewatch.store.base import Store
from pvewatch.watch.rules import open_conditions

log = logging.getLogger("pvewatch.sinks.alertmanager")
_SHOWN = 300  # characters of an answer kept in an error


class AlertmanagerSink:
    groups = False

    def __init__(
        self,
        name: str,
        options: AlertmanagerOptions,
        store: Store | None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.options = options
        self._store = store
        self._clock = clock
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    @classmethod
    def build(
        cls, name: str, options: AlertmanagerOptions, context: SinkContext
    ) -> AlertmanagerSink:
        return cls(name, options, context.store)

    async def send(self, events: Sequence[Event]) -> None:
        for event in events:
            await self.push_event(event)

    async def push_event(self, event: Event) -> Alert | None:
        """Push the alert of `event` to every URL and keep what is open; None: no alert."""
        if self._closed:
            raise SinkError(f"alertmanager sink {self.name!r} is closed", retryable=False)
        async with self._lock:
            probe = alert_of(event, self.options.external_url)
            if probe is None:
                return None
            # A reminder or a resolution of a kept alert keeps the problem's startsAt.
            key = probe.fingerprint
            kept = (await self._kept()).get(key)
            started = kept.starts_at if kept is not None else None
            alert = alert_of(event, self.options.external_url, started)
            assert alert is not None
            await self.post([alert.body(self._clock(), self.options.resend_secs)])
            if keeps_open(event):
                await self._keep(key, json.dumps(alert.dump(), sort_keys=True))
            elif event.resolves:
                await self._keep(key, None)
            return alert

    async def resend(self) -> int:
        """Push every open alert again with a fresh endsAt, and end those whose condition
        the rules closed without this sink hearing of it; how many are open."""
        async with self._lock:
            kept = await self._kept()
            if not kept:
                return 0
            gone = await self._ended(kept)
            now = self._clock()
            over = {k: replace(kept[k], resolved_at=format_time(now)) for k in gone}
            alerts = {**kept, **over}
            await self.post([a.body(now, self.options.resend_secs) for a in alerts.values()])
            for key in gone:
                await self._keep(key, None)
            return len(kept) - len(gone)

    async def _ended(self, kept: dict[str, Alert]) -> set[str]:
        if self._store is None:
            return set()
        state = self._store.load_rule_state
        clusters = {a.labels.get("cluster", "") for a in kept.values()}
        open_by_cluster = {c: open_conditions(await self._stored(state, c)) for c in clusters}
        return ended(kept, open_by_cluster)

    async def run(self) -> None:
        """Resend the open alerts now (after a start or a restart) and every resend_secs,
        until cancelled. A failure is logged and tried again at the next round."""
        while not self._closed:
            try:
                count = await self.resend()
                log.debug("sink %s: resent %d open alert(s)", self.name, count)
            except SinkError as e:
                log.warning("sink %s: open alerts not resent: %s", self.name, e)
            except Exception as e:  # a bug must not end the resends; its text may hold a URL
                log.error(
                    "sink %s: unexpected %s resending open alerts", self.name, type(e).__name__
                )
            await asyncio.sleep(self.options.resend_secs)

    async def post(self, alerts: list[dict[str, Any]]) -> None:
        """POST `alerts` to every URL; SinkError when one of them did not take them (the
        retryable one, when any is: a retry goes to every URL again)."""
        body = json.dumps(alerts, ensure_ascii=True).encode()
        results = await asyncio.gather(*(self._post_one(url, body) for url in self.options.urls))
        errors = [e for e in results if e is not None]
        if errors:
            first = next((e for e in errors if e.retryable), errors[0])
            raise SinkError("; ".join(str(e) for e in errors), retryable=first.retryable)

    async def _post_one(self, url: str, body: bytes) -> SinkError | None:
        headers = {"content-type": "application/json", "user-agent": f"pvewatch/{__version__}"}
        try:
            async with asyncio.timeout(self.options.timeout_secs):
                answer = await self._http().post(url + API_PATH, content=body, headers=headers)
        except TimeoutError:
            return SinkError(
                f"{url}: no answer within {self.options.timeout_secs:g}s", retryable=True
            )
        except httpx.HTTPError as e:
            return SinkError(f"{url}: {http_reason(e)}", retryable=True)
        error = answer_error(
            answer.status_code, answer.headers.get("retry-after"), self._clock(), url
        )
        if error is None:
            return None
        said = " ".join(answer.text.split())[:_SHOWN]
        return SinkError(f"{error}: {said}" if said else str(error), retryable=error.retryable)

    async def _kept(self) -> dict[str, Alert]:
        """The open alerts kept in the store, by fingerprint (unreadable ones are dropped
        with a warning: they cannot be pushed)."""
        if self._store is None:
            return {}
        raw = await self._stored(self._store.sink_state, self.name)
        alerts = {}
        for key, data in raw.items():
            try:
                alerts[key] = Alert.load(json.loads(data))
            except (ValueError, KeyError, TypeError, AttributeError):
                log.warning("sink %s: an unreadable open alert %s is forgotten", self.name, key)
                await self._keep(key, None)
        return alerts

    async def _keep(self, key: str, data: str | None) -> None:
        if self._store is not None:
            await self._stored(self._store.put_sink_state, self.name, key, data)

    async def _stored(self, call: Callable[..., Any], *args: Any) -> Any:
        try:
            return await asyncio.to_thread(call, *args)
        except PvewatchError as e:  # StoreError: try again later
            raise SinkError(f"state store: {e}", retryable=True) from None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            o, what = self.options, f"alertmanager sink {self.name!r}"
            self._client = http_client(what, o.tls, o.timeout_secs, self._transport)
        return self._client

    async def aclose(self) -> None:
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


async def check_alertmanager(options: AlertmanagerOptions, config: Config) -> list[Check]:
    """`check-config --connect`: GET /api/v2/status of each URL; no alert is pushed."""
    checks = []
    sink = AlertmanagerSink("check", options, None)
    try:
        for url in options.urls:
            checks.append(await _status(sink, url))
    finally:
        await sink.aclose()
    return checks


async def _status(sink: AlertmanagerSink, url: str) -> Check:
    try:
        answer = await sink._http().get(url + "/api/v2/status")
    except SinkError as e:
        return Check("fail", "tls", str(e))
    except httpx.HTTPError as e:
        return Check("fail", "connect", f"{url}: {http_reason(e)}")
    if answer.status_code != 200:
        return Check("fail", "connect", f"{url} answered HTTP {answer.status_code}")
    try:
        status = answer.json()
        version = str(status["versionInfo"]["version"])
        cluster = str(status["cluster"]["status"])
    except (ValueError, KeyError, TypeError):
        return Check("fail", "connect", f"{url} answered, but not as Alertmanager's API")
    return Check("ok", "connect", f"{url}: Alertmanager {version}, cluster {cluster}")


async def try_alertmanager(sink: AlertmanagerSink, event: Event) -> Tried:
    """`test-sink`: the sample as a firing alert that ends by itself after resend_secs
    (`endsAt`), marked `test: "true"`; what each URL answered."""
    alert = alert_of(event, sink.options.external_url)
    assert alert is not None  # the sample is a problem
    alert.labels["test"] = "true"
    now = sink._clock()
    body = alert.body(now, sink.options.resend_secs)
    ends = now + timedelta(seconds=sink.options.resend_secs)
    body["endsAt"] = format_time(ends)
    started = time.monotonic()
    try:
        await sink.post([body])
    except SinkError as e:
        retry = " (would be retried)" if e.retryable else " (would not be retried)"
        return Tried(False, (f"sink {sink.name}: NOT delivered: {e}{retry}",))
    took = time.monotonic() - started
    return Tried(
        True,
        (
            f"sink {sink.name}: {', '.join(sink.options.urls)} took the test alert "
            f"{alert.labels['alertname']} (fingerprint {alert.fingerprint}) in {took:.2f}s",
            f"  it resolves itself at {body['endsAt']}",
        ),
    )


ALERTMANAGER = SinkType(
    options=AlertmanagerOptions,
    keys=AM_KEYS,
    parse=am_options,
    build=AlertmanagerSink.build,
    check=check_alertmanager,
    test=try_alertmanager,
    run=AlertmanagerSink.run,
    concurrency=1,  # pushes hold one lock anyway
)
