"""The alerts `type: alertmanager` pushes, and its options. Pure: the time is an argument.

    sinks:
      am:
        type: alertmanager
        urls: ["http://am1:9093", "http://am2:9093"]   # an HA pair: each gets every alert
        resend_secs: 60            # open alerts are pushed again this often
        timeout_secs: 10
        tls: {verify: true, ca_file: /etc/pvewatch/am-ca.pem}
        external_url: "https://pvewatch.example.net/"  # generatorURL and the `link` annotation

An alert has the labels, and so the fingerprint, of the `alertmanager` webhook format
(`formats.alertmanager`): a problem fires, the event that resolves it ends the alert of
the same labels, an info event that is neither is not pushed. A firing alert ends
`4 * resend_secs` after it was pushed (as Prometheus does with its resend delay), so an
alert stays firing through three missed resends and ends by itself if pvewatch stops
pushing it; a problem that opens no condition (a warning that nothing resolves) is
pushed once and ends that way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from pvewatch.config.reading import Ctx, get_number, get_str, join
from pvewatch.config.types import SinkOptions, TlsConfig
from pvewatch.model import Event, format_time
from pvewatch.sinks.formats.alertmanager import (
    alert_annotations,
    alert_labels,
    alert_status,
    fingerprint,
)
from pvewatch.sinks.webhook_options import tls_options

AM_KEYS = frozenset({"urls", "resend_secs", "timeout_secs", "tls", "external_url"})
LIFETIMES = 4  # a firing alert's endsAt is this many resend_secs ahead
API_PATH = "/api/v2/alerts"


@dataclass(frozen=True, slots=True)
class AlertmanagerOptions(SinkOptions):
    urls: tuple[str, ...]
    resend_secs: float = 60.0
    timeout_secs: float = 10.0
    tls: TlsConfig = field(default_factory=TlsConfig)
    external_url: str = ""


def am_options(ctx: Ctx, path: str, m: Mapping[str, object]) -> AlertmanagerOptions:
    return AlertmanagerOptions(
        urls=_urls(ctx, join(path, "urls"), m.get("urls")),
        resend_secs=get_number(
            ctx, join(path, "resend_secs"), m.get("resend_secs"), 60.0, (1, 3600, True)
        ),
        timeout_secs=get_number(
            ctx, join(path, "timeout_secs"), m.get("timeout_secs"), 10.0, (0, 300, False)
        ),
        tls=tls_options(ctx, join(path, "tls"), m.get("tls")),
        external_url=_url(ctx, join(path, "external_url"), m.get("external_url")) or "",
    )


def _urls(ctx: Ctx, path: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        ctx.add(path, "required: a list of Alertmanager URLs (http://host:9093)")
        return ()
    found = [_url(ctx, f"{path}[{i}]", v) for i, v in enumerate(value)]
    urls = tuple(u.rstrip("/") for u in found if u)
    if len(set(urls)) < len(urls):
        ctx.add(path, "lists the same URL twice")
    return urls


def _url(ctx: Ctx, path: str, value: object) -> str | None:
    text = get_str(ctx, path, value)
    if text is None:
        return None
    try:
        parts = urlsplit(text.strip())
        parts.port  # noqa: B018 — raises ValueError for a bad port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        ctx.add(path, "expected an http:// or https:// URL with a host")
        return None
    if parts.username or parts.password or parts.query:
        ctx.add(path, "a user, password or query in the URL is not supported")
        return None
    return text.strip()


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert as the API takes it, before its `endsAt` is set."""

    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str
    generator_url: str
    resolved_at: str | None  # the resolving event's time; None: firing

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)

    def body(self, now: datetime, resend_secs: float) -> dict[str, Any]:
        """The alert with its `endsAt`: the resolution's time, or `LIFETIMES` resends on."""
        ends = self.resolved_at or format_time(now + timedelta(seconds=LIFETIMES * resend_secs))
        body: dict[str, Any] = {
            "labels": self.labels,
            "annotations": self.annotations,
            "startsAt": self.starts_at,
            "endsAt": ends,
        }
        if self.generator_url:
            body["generatorURL"] = self.generator_url
        return body

    def dump(self) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "annotations": self.annotations,
            "startsAt": self.starts_at,
            "generatorURL": self.generator_url,
        }

    @classmethod
    def load(cls, raw: Any) -> Alert:
        """A firing alert as `dump` wrote it; KeyError/TypeError when it is not one."""
        labels, notes = raw["labels"], raw["annotations"]
        if not all(isinstance(v, str) for v in [*labels.values(), *notes.values()]):
            raise TypeError("labels and annotations hold strings")
        return cls(dict(labels), dict(notes), str(raw["startsAt"]), str(raw["generatorURL"]), None)


def alert_of(event: Event, external_url: str, started: str | None = None) -> Alert | None:
    """The alert of `event`, or None for an event that is no alert. `started`: the
    startsAt of the alert as first pushed, if it is kept (a reminder, a resolution)."""
    status = alert_status(event)
    if status is None:
        return None
    notes = alert_annotations(event)
    if external_url:
        notes["link"] = external_url
    time = format_time(event.time)
    resolved = status == "resolved"
    return Alert(
        alert_labels(event),
        notes,
        started or time,
        external_url,
        time if resolved else None,
    )


def keeps_open(event: Event) -> bool:
    """A firing alert that stays open until an event resolves it (a condition): pushed
    again every resend_secs, and after a restart. Other problems are pushed once."""
    return bool(event.condition) and not event.resolves


def ended(
    kept: Mapping[str, Alert], open_by_cluster: Mapping[str, frozenset[str] | None]
) -> set[str]:
    """The kept alerts whose condition the rules no longer hold open (the event that ended
    it went to no sink of this kind: `send_resolved: false`, a silence; or the resource
    is gone): they are ended rather than pushed on forever. A cluster whose rule state
    says nothing (None, or not given) ends nothing."""
    gone = set()
    for key, alert in kept.items():
        opened = open_by_cluster.get(alert.labels.get("cluster", ""))
        condition = alert.annotations.get("condition")
        if opened is not None and condition is not None and condition not in opened:
            gone.add(key)
    return gone
