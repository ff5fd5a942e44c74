"""The types every format module shares: `Payload` (one message to send), the
`Formatter` protocol, and `FormatOptions` (a webhook sink's `format:` and its options)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pvewatch.model import Event


@dataclass(frozen=True, slots=True)
class Payload:
    """One message to send: its body, its content type, the format's own headers (e.g.
    ntfy's Title) and the ids of the events it carries."""

    body: bytes
    content_type: str
    headers: Mapping[str, str] = field(default_factory=dict)
    event_ids: tuple[str, ...] = ()


class Formatter(Protocol):
    name: str
    groups: bool  # chat formats: a burst may be grouped into one message

    def render(self, events: Sequence[Event]) -> list[Payload]:
        """One event (or, for grouping formats, a burst of them) → one or more messages,
        each within the receiving service's size limits. Never raises on any Event."""
        ...

    def effective_status(self, status: int, body: bytes) -> int:
        """The status the receiver meant (Teams answers throttling as 200 with "429" in
        the body → 429); identity for most formats."""
        ...


# Which format each option key belongs to (`format` belongs to every one); the keys of
# `FormatOptions` fields are read into them, `template_file` into `template`.
OPTION_FORMAT: Mapping[str, str] = {
    "template": "template",
    "template_file": "template",
    "content_type": "template",
    "group": "template",
    "topic": "ntfy",
    "external_url": "alertmanager",
}


@dataclass(frozen=True, slots=True)
class FormatOptions:
    """The format a webhook sink renders its bodies in, and that format's options (the
    others keep their defaults); read by `pvewatch.sinks.formats.options`."""

    format: str = "native"
    template: str = ""  # template: the Jinja2 source
    content_type: str = "application/json"  # template
    group: bool = False  # template: one message per burst
    topic: str | None = None  # ntfy: None puts the title and tags in headers
    external_url: str = ""  # alertmanager

    def summary(self) -> dict[str, object]:
        """`format` and the chosen format's own options, as `check-config` shows them."""
        own = (k for k, owner in OPTION_FORMAT.items() if owner == self.format)
        return {"format": self.format} | {k: getattr(self, k) for k in own if hasattr(self, k)}
