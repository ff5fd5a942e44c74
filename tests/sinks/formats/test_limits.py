"""Each message stays within the receiving service's limits, however large the burst and
however long the names; and no Event makes any formatter raise."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pvewatch.model import Event
from pvewatch.sinks.formats import Payload
from pvewatch.sinks.formats.discord import utf16_len

from .events import FIRING, burst, events
from .test_golden import SINKS, formatter

LONG_NAME = "🔥" * 300 + "x" * 5000  # wide characters and a name far beyond any limit
HUGE = {
    "burst of 5000": burst(5000),
    "burst of long names": burst(300, LONG_NAME),
    "one long event": [replace(FIRING, summary="s" * 100_000 + "é" * 10_000)],
}


def _slack(body: dict[str, Any], _: Payload) -> None:
    header, section, context = body["blocks"]
    assert len(header["text"]["text"]) <= 150
    assert len(section["text"]["text"]) <= 3000
    assert len(context["elements"][0]["text"]) <= 2000
    assert len(body["text"]) <= 3000


def _discord(body: dict[str, Any], _: Payload) -> None:
    (embed,) = body["embeds"]
    assert utf16_len(body["content"]) <= 2000
    assert utf16_len(embed["title"]) <= 256
    assert utf16_len(embed["description"]) <= 4096
    assert utf16_len(embed["footer"]["text"]) <= 2048
    total = sum(utf16_len(embed[k]) for k in ("title", "description")) + utf16_len(
        embed["footer"]["text"]
    )
    assert total <= 6000


def _teams(_: dict[str, Any], payload: Payload) -> None:
    assert len(payload.body) <= 28_000


def _ntfy(body: dict[str, Any], _: Payload) -> None:
    assert len(body["message"].encode()) <= 4096


def _ntfy_headers(_: object, payload: Payload) -> None:
    assert len(payload.body) <= 4096
    assert all(v.isascii() and v.isprintable() for v in payload.headers.values())


def _gotify(body: dict[str, Any], _: Payload) -> None:
    assert len(body["message"]) <= 16_384


LIMITS: dict[str, Callable[[Any, Payload], None]] = {
    "slack": _slack,
    "discord": _discord,
    "teams": _teams,
    "ntfy": _ntfy,
    "ntfy-headers": _ntfy_headers,
    "gotify": _gotify,
}


@pytest.mark.parametrize("case", sorted(HUGE))
@pytest.mark.parametrize("name", sorted(LIMITS))
def test_a_huge_message_stays_within_the_service_limits(name: str, case: str) -> None:
    events = HUGE[case]
    (payload,) = formatter(name).render(events)
    body = None if name == "ntfy-headers" else json.loads(payload.body)
    LIMITS[name](body, payload)
    assert payload.event_ids == tuple(e.id for e in events)  # all delivered by this message
    text = payload.body.decode()
    if len(events) > 1:
        assert "more" in text  # "… and N more"


def test_a_burst_leads_with_its_most_severe_event() -> None:
    (payload,) = formatter("gotify").render(burst(500))
    body = json.loads(payload.body)
    assert body["title"] == "🚨 [prod] Node pve3 offline, and 501 more: 500 guests, 1 storage"
    assert body["message"].splitlines()[0] == "🚨 Node pve3 offline"
    assert body["message"].splitlines()[-1] == "… and 477 more"


JSON_FORMATS = sorted(n for n in SINKS if n not in ("ntfy-headers", "template"))


@settings(max_examples=60, deadline=None)
@given(batch=st.lists(events, min_size=1, max_size=4))
def test_no_event_makes_a_formatter_raise_and_json_bodies_parse(batch: list[Event]) -> None:
    for name in SINKS:
        f = formatter(name)
        payloads = f.render(batch)
        carried = [i for p in payloads for i in p.event_ids]
        if f.groups:
            assert len(payloads) == 1
            assert carried == [e.id for e in batch]
        elif name != "alertmanager":  # alertmanager leaves out what is no alert
            assert carried == [e.id for e in batch]
        for p in payloads:
            if name in JSON_FORMATS or p.content_type == "application/json":
                json.loads(p.body)
            assert all("\n" not in v and "\r" not in v for v in p.headers.values())
