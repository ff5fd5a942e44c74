"""`format: native` — the Standard Webhooks payload shape:
`{"type": <event type>, "timestamp": <event time, RFC 3339>, "data": <Event.to_dict()>}`."""

from __future__ import annotations

from collections.abc import Sequence

from pvewatch.model import Event, format_time
from pvewatch.sinks.formats.base import Payload
from pvewatch.sinks.formats.common import json_payload


class NativeFormatter:
    name = "native"
    groups = False

    def render(self, events: Sequence[Event]) -> list[Payload]:
        return [json_payload(body(e), "application/json", (e.id,)) for e in events]

    def effective_status(self, status: int, body: bytes) -> int:
        return status


def body(event: Event) -> dict[str, object]:
    return {"type": event.type, "timestamp": format_time(event.time), "data": event.to_dict()}
