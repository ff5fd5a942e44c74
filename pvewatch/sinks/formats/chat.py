"""What the chat formats (slack, discord, teams, ntfy, gotify) say, before each puts it
in its own shape: a title and lines, cut to fit a size budget.

One event reads as its summary with its details (resource, change, cause) as lines. A
burst reads as its most severe event followed by how many more and of what ("Node pve3
offline, and 20 more: 20 guests"), then one line per event; lines that do not fit end
in "… and N more". Text from the server (names, tags) is made one-line and printable,
so a VM name cannot forge lines or break the layout.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pvewatch.model import Event, Severity, format_time
from pvewatch.sinks.formats.base import Payload

MAX_LINES = 25  # a chat message people read; the rest is "… and N more"
_GUEST_TYPES = frozenset({"qemu", "lxc"})
_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
_EMOJI = {Severity.INFO: "\u2139\ufe0f", Severity.WARNING: "⚠️", Severity.CRITICAL: "🚨"}
RESOLVED_EMOJI = "✅"

Measure = Callable[[str], int]


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "backslashreplace"))


@dataclass(frozen=True, slots=True)
class Digest:
    title: str  # one line, cluster first: "[prod] VM 100 (web1) on pve1 stopped"
    lines: tuple[str, ...]  # details of one event, or one line per event of a burst
    severity: Severity  # the highest of the burst (a resolving event counts as info)
    resolved: bool  # every event resolves a problem
    time: str  # RFC 3339 time of the lead event
    clusters: tuple[str, ...]

    @property
    def emoji(self) -> str:
        return RESOLVED_EMOJI if self.resolved else _EMOJI.get(self.severity, "")


def digest(events: Sequence[Event]) -> Digest:
    """The title and lines of a message carrying `events` (at least one)."""
    lead = max(events, key=_rank)  # max keeps the first of equals: the earliest
    clusters = tuple(dict.fromkeys(e.cluster for e in events))
    title = f"[{', '.join(clusters)}] {one_line(lead.summary)}"
    if len(events) == 1:
        lines = details(lead)
    else:
        rest = [e for e in events if e is not lead]
        title += f", and {len(rest)} more: {_kinds(rest)}"
        # Most severe first (stable: in order of time among equals), so a cut keeps them.
        ordered = sorted(events, key=_rank, reverse=True)
        lines = tuple(event_line(e, len(clusters) > 1) for e in ordered)
    return Digest(
        title=title,
        lines=lines,
        severity=_severity_of(events),
        resolved=all(e.resolves for e in events),
        time=format_time(lead.time),
        clusters=clusters,
    )


def _rank(event: Event) -> int:
    return 0 if event.resolves else _RANK.get(event.severity, 0)


def _severity_of(events: Sequence[Event]) -> Severity:
    top = max(_rank(e) for e in events)
    return next(s for s, r in _RANK.items() if r == top)


def _kinds(events: Sequence[Event]) -> str:
    """ "20 guests, 1 storage": what the other events of a burst are about."""
    counts = Counter(_noun(e) for e in events)
    parts = [f"{n} {noun}{'' if n == 1 else 's'}" for noun, n in counts.most_common()]
    return ", ".join(parts)


def _noun(event: Event) -> str:
    if event.resource is None:
        return "event"
    if event.resource.type in _GUEST_TYPES:
        return "guest"
    return one_line(event.resource.type) or "event"


def event_line(event: Event, with_cluster: bool = False) -> str:
    emoji = RESOLVED_EMOJI if event.resolves else _EMOJI.get(event.severity, "")
    where = f"[{event.cluster}] " if with_cluster else ""
    late = " (detected late)" if event.detected_late else ""
    return f"{emoji} {where}{one_line(event.summary)}{late}"


def details(event: Event) -> tuple[str, ...]:
    lines = [f"Event: {one_line(event.type)} ({event.severity.value})"]
    r = event.resource
    if r is not None:
        name = f" ({one_line(r.name)})" if r.name else ""
        node = f" on {one_line(r.node)}" if r.node else ""
        lines.append(f"Resource: {one_line(r.id)}{name}{node}")
    c = event.change
    if c is not None:
        lines.append(f"Change: {one_line(c.field)} {_value(c.old)} → {_value(c.new)}")
    if event.cause is not None:
        by = f" by {one_line(event.cause.user)}" if event.cause.user else ""
        lines.append(f"Cause: {one_line(event.cause.kind)}{by}")
    if event.detected_late:
        lines.append("Detected late (pvewatch was not watching when it happened)")
    if event.resolves:
        lines.append(f"Resolves: {one_line(event.resolves)}")
    return tuple(lines)


def _value(value: object) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, list):
        return ",".join(one_line(str(v)) for v in value) or "(none)"
    return one_line(str(value))


def one_line(text: str) -> str:
    """Control characters (newlines included) become spaces; server text stays one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else " " for c in text)


def truncate(text: str, limit: int, measure: Measure = len) -> str:
    """`text` cut to `limit` (as `measure` counts), ending in "…" when cut."""
    if measure(text) <= limit:
        return text
    low, high = 0, len(text)
    while low < high:  # the longest prefix that fits with the ellipsis
        mid = (low + high + 1) // 2
        if measure(text[:mid] + "…") <= limit:
            low = mid
        else:
            high = mid - 1
    return text[:low] + "…" if measure("…") <= limit else ""


def fit_lines(
    lines: Sequence[str],
    limit: int,
    *,
    sep: str = "\n",
    measure: Measure = len,
    max_lines: int = MAX_LINES,
) -> str:
    """As many whole lines as fit in `limit` (and `max_lines`), then "… and N more"."""
    whole = sep.join(lines)
    if len(lines) <= max_lines and measure(whole) <= limit:
        return whole
    if len(lines) == 1:
        return truncate(whole, limit, measure)
    kept: list[str] = []
    for line in lines[:max_lines]:
        more = f"… and {len(lines) - len(kept) - 1} more"
        if measure(sep.join([*kept, line, more])) > limit:
            break
        kept.append(line)
    if not kept:  # not even one line fits whole beside the tail: cut the first one
        more = f"… and {len(lines) - 1} more"
        head = truncate(lines[0], limit - measure(sep + more), measure)
        return truncate(sep.join(x for x in (head, more) if x), limit, measure)
    return sep.join([*kept, f"… and {len(lines) - len(kept)} more"])


class ChatFormatter:
    """The frame of the grouping formats: a burst (or one event) is one message, which
    each format builds from the digest in `message`."""

    name = "chat"
    groups = True

    def render(self, events: Sequence[Event]) -> list[Payload]:
        if not events:
            return []
        return [self.message(digest(events), tuple(e.id for e in events))]

    def message(self, d: Digest, event_ids: tuple[str, ...]) -> Payload:
        raise NotImplementedError

    def effective_status(self, status: int, body: bytes) -> int:
        return status
