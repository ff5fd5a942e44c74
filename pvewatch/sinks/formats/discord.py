"""`format: discord` — an execute-webhook message: `content` and one embed.

Limits (discord.com developer docs): content at most 2000 characters; an embed's title
at most 256, description 4096, footer 2048, and all embeds of a message 6000 together,
counted in UTF-16 code units as Discord does.
`allowed_mentions` is empty, so a VM named "@everyone" pings no one. Discord's 429 comes
with Retry-After, which the delivery loop honours.
"""

from __future__ import annotations

from pvewatch.model import Severity
from pvewatch.sinks.formats.base import Payload
from pvewatch.sinks.formats.chat import ChatFormatter, Digest, fit_lines, truncate
from pvewatch.sinks.formats.common import json_payload

CONTENT_CHARS = 2000
TITLE_CHARS = 256
DESCRIPTION_CHARS = 4096
FOOTER_CHARS = 2048
EMBEDS_CHARS = 6000
_COLOR = {Severity.INFO: 0x3498DB, Severity.WARNING: 0xF1C40F, Severity.CRITICAL: 0xE74C3C}
_RESOLVED_COLOR = 0x2ECC71


class DiscordFormatter(ChatFormatter):
    name = "discord"

    def message(self, d: Digest, event_ids: tuple[str, ...]) -> Payload:
        title = truncate(f"{d.emoji} {d.title}", TITLE_CHARS, utf16_len)
        footer = truncate(f"pvewatch · {', '.join(d.clusters)}", FOOTER_CHARS, utf16_len)
        room = min(DESCRIPTION_CHARS, EMBEDS_CHARS - utf16_len(title) - utf16_len(footer))
        lines = [escape(line) for line in d.lines]
        embed = {
            "title": title,
            "description": fit_lines(lines, room, measure=utf16_len),
            "color": _RESOLVED_COLOR if d.resolved else _COLOR.get(d.severity, 0),
            "footer": {"text": footer},
            "timestamp": d.time,
        }
        body = {
            "content": truncate(escape(f"{d.emoji} {d.title}"), CONTENT_CHARS, utf16_len),
            "embeds": [embed],
            "allowed_mentions": {"parse": []},
        }
        return json_payload(body, "application/json", event_ids)


def utf16_len(text: str) -> int:
    """Discord counts as JavaScript does: UTF-16 code units (an emoji may be two)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def escape(text: str) -> str:
    """Discord markdown characters, so server text shows as written."""
    for c in "\\*_~`|>[]":
        text = text.replace(c, "\\" + c)
    return text
