"""The mail of an event or a burst, and what an SMTP reply means for delivery. Pure.

One event, or a burst as delivery hands it to a grouping sink, is one mail: the subject
from the sink's template, a plain-text body and an HTML alternative (every piece of text
escaped) with the chat formats' digest (`formats.chat`: a node outage is one mail, its
most severe event first, then one line per event).

`Message-ID` is derived from the event ids (`signing.message_id`: the event id for one
event), so a mail sent again after a crash has the id of the first one. A mail carrying
events that resolve problems names the problems' mails in `In-Reply-To`/`References`,
so mail clients thread a resolution under its problem (when the problem went on its own;
a burst's mail has an id of its own).

SMTP replies: 2xx/3xx accepted; 4xx a temporary failure (retried); 5xx permanent (the row
goes dead with the reply, shown by `pvewatch deliveries`).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime

from pvewatch.errors import SinkError
from pvewatch.model import Event
from pvewatch.sinks import signing
from pvewatch.sinks.formats.chat import digest, fit_lines, truncate
from pvewatch.sinks.mail_options import MailOptions, render_subject

MAX_SUBJECT = 200  # characters; a longer summary ends in "…"
MAX_LINES = 1000  # of a burst's mail; the rest is "… and N more"
MAX_BODY = 512 * 1024  # characters of the plain-text body
_REPLY_SHOWN = 300  # characters of the server's reply kept in an error


@dataclass(frozen=True, slots=True)
class Mail:
    message: EmailMessage
    message_id: str  # with the angle brackets
    recipients: tuple[str, ...]


def msg_id(event_ids: Sequence[str], sender: str) -> str:
    """`<evt_…@example.net>`: the sender's domain on the right."""
    domain = sender.rpartition("@")[2].rstrip(">").strip() or "pvewatch"
    return f"<{signing.message_id(event_ids)}@{domain}>"


def build_mail(options: MailOptions, events: Sequence[Event]) -> Mail:
    """The mail carrying `events` (at least one)."""
    d = digest(events)
    severity = "RESOLVED" if d.resolved else d.severity.value.upper()
    fields = {
        "severity": severity,
        "summary": d.title,
        "cluster": ", ".join(d.clusters),
        "count": str(len(events)),
    }
    subject = truncate(render_subject(options.subject, fields), MAX_SUBJECT)
    ids = [e.id for e in events]
    lines = fit_lines(d.lines, MAX_BODY, max_lines=MAX_LINES).split("\n")
    footer = [f"Time: {d.time}", f"Event id{'s' if len(ids) > 1 else ''}: {', '.join(ids)}"]
    text = "\n".join([d.title, "", *lines, "", *footer, "", "-- pvewatch"])
    msg = EmailMessage()
    msg["From"] = options.sender
    msg["To"] = ", ".join(options.to)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(events[0].time)
    message_id = msg_id(ids, options.sender)
    msg["Message-ID"] = message_id
    parents = [msg_id([e.resolves], options.sender) for e in events if e.resolves]
    if parents:
        msg["In-Reply-To"] = parents[0]
        msg["References"] = " ".join(dict.fromkeys(parents))
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    msg["X-Pvewatch-Severity"] = severity.lower()
    msg.set_content(text)
    msg.add_alternative(_html(d.title, lines, footer), subtype="html")
    return Mail(msg, message_id, options.to)


def _html(title: str, lines: Sequence[str], footer: Sequence[str]) -> str:
    esc = html.escape
    items = "".join(f"<li>{esc(line)}</li>" for line in lines)
    foot = "<br>".join(esc(line) for line in footer)
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
        f"<h3>{esc(title)}</h3><ul>{items}</ul>"
        f'<p style="color:#666">{foot}</p><p>&mdash; pvewatch</p></body></html>'
    )


def reply_error(code: int, reply: str, where: str, what: str) -> SinkError:
    """The SinkError of an SMTP reply `code` to `what` (a command, a recipient): 4xx is
    retried, 5xx (and anything else) is not."""
    shown = " ".join(reply.split())[:_REPLY_SHOWN]
    said = f"{where}: {what}: SMTP {code} {shown}".rstrip()
    return SinkError(said, retryable=400 <= code < 500)
