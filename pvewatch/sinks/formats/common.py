"""Helpers shared by the format modules: deterministic JSON, text trimming, labels."""

from __future__ import annotations

import json
from collections.abc import Sequence

from pvewatch.sinks.formats.base import Payload


def dumps(obj: object) -> bytes:
    """Compact JSON with sorted keys (golden tests compare bytes). `default=str` keeps an
    odd value in an event's `details` from costing the whole message."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode("utf-8", "backslashreplace")


def json_payload(obj: object, content_type: str, event_ids: Sequence[str]) -> Payload:
    return Payload(dumps(obj), content_type, {}, tuple(event_ids))
