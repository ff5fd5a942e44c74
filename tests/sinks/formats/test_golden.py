"""The exact body of every format, for a firing event, the event that resolves it and
(grouping formats) a burst. The goldens are files under golden/; after an intended
change, regenerate them with PVEWATCH_REGEN_GOLDEN=1 and review the diff."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http
from cloudevents.core.formats.json import JSONFormat

from pvewatch.model import Event
from pvewatch.sinks.formats.base import FormatOptions, Formatter, Payload
from pvewatch.sinks.formats.table import FORMATS, build_formatter

from .events import FIRING, RESOLVED, burst

GOLDEN = Path(__file__).parent / "golden"
REGEN = os.environ.get("PVEWATCH_REGEN_GOLDEN") == "1"
TEMPLATE = (
    '{"text": {{ (event.summary ~ " [" ~ event.severity ~ "]") | tojson }},'
    ' "ids": {{ events | map(attribute="id") | list | tojson }}}\n'
)
# name → the options of a sink that uses it
SINKS: dict[str, FormatOptions] = {
    "native": FormatOptions("native"),
    "cloudevents": FormatOptions("cloudevents"),
    "alertmanager": FormatOptions("alertmanager", external_url="https://pvewatch.example"),
    "slack": FormatOptions("slack"),
    "discord": FormatOptions("discord"),
    "teams": FormatOptions("teams"),
    "ntfy": FormatOptions("ntfy", topic="pve-alerts"),
    "ntfy-headers": FormatOptions("ntfy", topic=None),
    "gotify": FormatOptions("gotify"),
    "template": FormatOptions("template", template=TEMPLATE, content_type="application/json"),
}
CASES = {"firing": [FIRING], "resolved": [RESOLVED], "burst": burst(30, "web")}


def formatter(name: str) -> Formatter:
    return build_formatter("hook", SINKS[name])


def check_golden(name: str, payloads: Sequence[Payload]) -> None:
    assert len(payloads) == 1
    file = GOLDEN / name
    if REGEN:
        file.write_bytes(payloads[0].body)
    assert payloads[0].body == file.read_bytes(), f"{name} differs from its golden file"


def test_every_format_has_golden_cases() -> None:
    assert {SINKS[name].format for name in SINKS} == set(FORMATS)


@pytest.mark.parametrize("case", ["firing", "resolved"])
@pytest.mark.parametrize("name", sorted(SINKS))
def test_body_is_exactly_the_golden_one(name: str, case: str) -> None:
    check_golden(f"{name}-{case}", formatter(name).render(CASES[case]))


@pytest.mark.parametrize("name", sorted(n for n in SINKS if formatter(n).groups))
def test_a_burst_is_one_message_exactly_as_the_golden_one(name: str) -> None:
    events = CASES["burst"]
    (payload,) = formatter(name).render(events)
    assert payload.event_ids == tuple(e.id for e in events)
    check_golden(f"{name}-burst", [payload])


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("native", "application/json"),
        ("cloudevents", "application/cloudevents+json"),
        ("alertmanager", "application/json"),
        ("slack", "application/json"),
        ("discord", "application/json"),
        ("teams", "application/json"),
        ("ntfy", "application/json"),
        ("ntfy-headers", "text/plain; charset=utf-8"),
        ("gotify", "application/json"),
        ("template", "application/json"),
    ],
)
def test_content_type_and_event_ids(name: str, content_type: str) -> None:
    (payload,) = formatter(name).render([FIRING])
    assert payload.content_type == content_type
    assert payload.event_ids == (FIRING.id,)


def test_ntfy_without_topic_puts_title_priority_and_tags_in_headers() -> None:
    (firing,) = formatter("ntfy-headers").render([FIRING])
    (resolved,) = formatter("ntfy-headers").render([RESOLVED])
    assert firing.headers == {
        "Title": "[prod] VM 100 (web1) on pve1 stopped by alice@pve",
        "Priority": "4",
        "Tags": "warning,prod",
    }
    assert resolved.headers["Priority"] == "3"
    assert resolved.headers["Tags"] == "white_check_mark,prod"


def test_cloudevents_body_parses_with_the_cloudevents_sdk() -> None:
    for event in (FIRING, RESOLVED):
        (payload,) = formatter("cloudevents").render([event])
        message = HTTPMessage(headers={"content-type": payload.content_type}, body=payload.body)
        ce = from_http(message, JSONFormat())
        assert ce.get_id() == event.id
        assert ce.get_type() == f"io.pvewatch.{event.type}"
        assert ce.get_source() == "pvewatch://prod"
        assert ce.get_subject() == "qemu/100"
        assert ce.get_specversion() == "1.0"
        assert ce.get_data() == event.to_dict()


def test_native_body_is_the_standard_webhooks_shape_around_the_event() -> None:
    (payload,) = formatter("native").render([FIRING])
    body = json.loads(payload.body)
    assert body == {"type": "guest.stopped", "timestamp": "2026-11-28T01:02:03Z",
                    "data": FIRING.to_dict()}  # fmt: skip
    assert Event.from_dict(body["data"]) == FIRING
