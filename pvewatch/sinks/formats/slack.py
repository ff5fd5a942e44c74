"""`format: slack` — an incoming-webhook message: Block Kit blocks and a `text` fallback
(shown in notifications and by clients without blocks).

Limits (api.slack.com, Block Kit reference): a header's text is at most 150 characters,
a section's text at most 3000, a context element's text at most 2000. Text from the
server is escaped for mrkdwn (&, <, >), so a VM name cannot mention @channel or link.
"""

from __future__ import annotations

from pvewatch.sinks.formats.base import Payload
from pvewatch.sinks.formats.chat import ChatFormatter, Digest, fit_lines, truncate
from pvewatch.sinks.formats.common import json_payload

HEADER_CHARS = 150
SECTION_CHARS = 3000
CONTEXT_CHARS = 2000


class SlackFormatter(ChatFormatter):
    name = "slack"

    def message(self, d: Digest, event_ids: tuple[str, ...]) -> Payload:
        title = f"{d.emoji} {d.title}"
        lines = fit_lines([escape(line) for line in d.lines], SECTION_CHARS)
        footer = truncate(escape(f"pvewatch · {', '.join(d.clusters)} · {d.time}"), CONTEXT_CHARS)
        body = {
            "text": truncate(escape(title), SECTION_CHARS),
            "blocks": [
                {
                    "type": "header",
                    "text": {"type": "plain_text", "text": truncate(title, HEADER_CHARS)},
                },
                {"type": "section", "text": {"type": "mrkdwn", "text": lines}},
                {
                    "type": "context",
                    "elements": [{"type": "mrkdwn", "text": footer}],
                },
            ],
        }
        return json_payload(body, "application/json", event_ids)


def escape(text: str) -> str:
    """Slack's three control characters in mrkdwn text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
