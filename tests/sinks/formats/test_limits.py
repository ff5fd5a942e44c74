"""A burst too large for one chat message is cut, not split or dropped, and leads with its
most severe event; no Event makes any formatter raise. (That each body fits what its
service takes is checked against its schema, library or documented limits:
test_published.py.)"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pvewatch.model import Event

from .events import burst, events
from .test_golden import SINKS, formatter

LONG_NAME = "🔥" * 300 + "x" * 5000  # wide characters and a name far beyond any limit
CHAT = ["discord", "gotify", "ntfy", "ntfy-headers", "slack", "teams"]


@pytest.mark.parametrize("name", CHAT)
def test_a_cut_burst_is_still_one_message_that_says_how_many_more(name: str) -> None:
    """Whether it fits the service is test_published.py's question; here: one message
    carries every event of the burst, and says what it left out."""
    events = burst(300, LONG_NAME)
    (payload,) = formatter(name).render(events)
    assert payload.event_ids == tuple(e.id for e in events)  # all delivered by this message
    assert "more" in payload.body.decode()  # "… and N more"


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
