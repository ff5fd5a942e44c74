"""The two types every format module shares: `Payload` (one message to send) and the
`Formatter` protocol."""

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
