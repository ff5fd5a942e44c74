"""`format: gotify` — a Gotify message: `{"title", "message", "priority", "extras"}`.

Priority from severity on Gotify's 0-10 scale (clients notify loudly from 8): info 2,
warning 5, critical 8, a resolution 2. The message is plain text (`client::display`), so
server text cannot inject markdown; it is cut at 16 KiB, our own bound, since Gotify
sets none.
"""

from __future__ import annotations

from pvewatch.model import Severity
from pvewatch.sinks.formats.base import Payload
from pvewatch.sinks.formats.chat import ChatFormatter, Digest, fit_lines, truncate
from pvewatch.sinks.formats.common import json_payload

MESSAGE_CHARS = 16_384
TITLE_CHARS = 250
PRIORITY = {Severity.INFO: 2, Severity.WARNING: 5, Severity.CRITICAL: 8}
RESOLVED_PRIORITY = 2


class GotifyFormatter(ChatFormatter):
    name = "gotify"

    def message(self, d: Digest, event_ids: tuple[str, ...]) -> Payload:
        body = {
            "title": truncate(f"{d.emoji} {d.title}", TITLE_CHARS),
            "message": fit_lines(d.lines, MESSAGE_CHARS),
            "priority": RESOLVED_PRIORITY if d.resolved else PRIORITY.get(d.severity, 5),
            "extras": {"client::display": {"contentType": "text/plain"}},
        }
        return json_payload(body, "application/json", event_ids)
