"""`format: teams` — a message for a Teams Workflows webhook ("Post to a channel when a
webhook request is received"): one Adaptive Card (schema 1.4) as an attachment.

Teams refuses messages over about 28 KB, so the card's text is cut well below that.
Throttled requests may be answered 200 with "429" in the body (the Workflows/connector
quirk): `effective_status` reports them as the 429 they are, so the delivery retries.
"""

from __future__ import annotations

from pvewatch.model import Severity
from pvewatch.sinks.formats.base import Payload
from pvewatch.sinks.formats.chat import ChatFormatter, Digest, fit_lines, truncate, utf8_len
from pvewatch.sinks.formats.common import json_payload

MESSAGE_BYTES = 28_000  # Teams' limit for a whole message
TEXT_BYTES = 20_000  # what the card's text may take of it, leaving room for JSON escapes
TITLE_CHARS = 500
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
_COLOR = {Severity.INFO: "accent", Severity.WARNING: "warning", Severity.CRITICAL: "attention"}


class TeamsFormatter(ChatFormatter):
    name = "teams"

    def message(self, d: Digest, event_ids: tuple[str, ...]) -> Payload:
        title = truncate(f"{d.emoji} {d.title}", TITLE_CHARS)
        # Adaptive Card markdown: a blank line separates paragraphs.
        text = fit_lines(d.lines, TEXT_BYTES - utf8_len(title), sep="\n\n", measure=utf8_len)
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "msteams": {"width": "Full"},
            "body": [
                {
                    "type": "TextBlock",
                    "text": title,
                    "weight": "Bolder",
                    "size": "Medium",
                    "wrap": True,
                    "color": "good" if d.resolved else _COLOR.get(d.severity, "default"),
                },
                {"type": "TextBlock", "text": text, "wrap": True},
                {
                    "type": "TextBlock",
                    "text": f"pvewatch · {', '.join(d.clusters)} · {d.time}",
                    "isSubtle": True,
                    "size": "Small",
                    "wrap": True,
                },
            ],
        }
        body = {
            "type": "message",
            "attachments": [
                {"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}
            ],
        }
        return json_payload(body, "application/json", event_ids)

    def effective_status(self, status: int, body: bytes) -> int:
        if 200 <= status < 300 and b"429" in body:
            return 429
        return status
