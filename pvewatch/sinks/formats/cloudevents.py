"""`format: cloudevents` — CloudEvents 1.0 in structured JSON mode
(`application/cloudevents+json`): one event per message.

    specversion "1.0", id = the event id (unique per source, stable across retries),
    source "pvewatch://<cluster>", type "io.pvewatch.<event type>", time, subject = the
    resource id (absent for events about no resource), datacontenttype
    "application/json", data = the native event object.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from pvewatch.model import Event, format_time
from pvewatch.sinks.formats.base import Payload
from pvewatch.sinks.formats.common import json_payload

CONTENT_TYPE = "application/cloudevents+json"
TYPE_PREFIX = "io.pvewatch."


class CloudEventsFormatter:
    name = "cloudevents"
    groups = False

    def render(self, events: Sequence[Event]) -> list[Payload]:
        return [json_payload(body(e), CONTENT_TYPE, [e.id]) for e in events]

    def effective_status(self, status: int, body: bytes) -> int:
        return status


def body(event: Event) -> dict[str, object]:
    ce: dict[str, object] = {
        "specversion": "1.0",
        "id": event.id,
        "source": "pvewatch://" + quote(event.cluster.encode("utf-8", "backslashreplace"), safe=""),
        "type": TYPE_PREFIX + event.type,
        "time": format_time(event.time),
        "datacontenttype": "application/json",
        "data": event.to_dict(),
    }
    if event.resource is not None:
        ce["subject"] = event.resource.id
    return ce
