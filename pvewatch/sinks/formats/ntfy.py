"""`format: ntfy` — an ntfy notification, with title, priority (1-5) and tags (emoji
shortcodes, which ntfy shows as emoji) from severity.

With `topic:` set, the body is ntfy's JSON publish (`{"topic", "title", "message",
"priority", "tags"}`, for a URL that is the server's root); without it, the URL names
the topic and the message is the plain-text body with `Title`, `Priority` and `Tags`
headers (a non-ASCII title RFC 2047-encoded, which ntfy decodes). ntfy turns a message
over 4096 bytes into an attachment, so messages are cut below that.
"""

from __future__ import annotations

import base64

from pvewatch.model import Severity
from pvewatch.sinks.formats.base import Payload
from pvewatch.sinks.formats.chat import ChatFormatter, Digest, fit_lines, truncate, utf8_len
from pvewatch.sinks.formats.common import json_payload

MESSAGE_BYTES = 4096
TITLE_CHARS = 250
PRIORITY = {Severity.INFO: 3, Severity.WARNING: 4, Severity.CRITICAL: 5}
TAG = {Severity.INFO: "information_source", Severity.WARNING: "warning"}
TAG |= {Severity.CRITICAL: "rotating_light"}
RESOLVED_TAG = "white_check_mark"


class NtfyFormatter(ChatFormatter):
    name = "ntfy"

    def __init__(self, topic: str | None = None) -> None:
        self.topic = topic

    def message(self, d: Digest, event_ids: tuple[str, ...]) -> Payload:
        title = truncate(d.title, TITLE_CHARS)
        message = fit_lines(d.lines, MESSAGE_BYTES, measure=utf8_len)
        priority = 3 if d.resolved else PRIORITY.get(d.severity, 3)
        tags = [RESOLVED_TAG if d.resolved else TAG.get(d.severity, "bell"), *d.clusters]
        if self.topic is not None:
            body: dict[str, object] = {"topic": self.topic, "title": title}
            body |= {"message": message, "priority": priority, "tags": tags}
            return json_payload(body, "application/json", event_ids)
        headers = {"Title": header_value(title), "Priority": str(priority)}
        headers["Tags"] = header_value(",".join(tags))
        data = message.encode("utf-8", "backslashreplace")
        return Payload(data, "text/plain; charset=utf-8", headers, event_ids)


def header_value(text: str) -> str:
    """ASCII as is; anything else as an RFC 2047 encoded word (`=?UTF-8?B?...?=`)."""
    if text.isascii() and text.isprintable():
        return text
    raw = text.encode("utf-8", "backslashreplace")
    return "=?UTF-8?B?" + base64.b64encode(raw).decode("ascii") + "?="
