"""Silences: which events an operator keeps from every sink for a while. Pure, and a
ground-layer module: the store keeps silences, the rules apply them (`watch.suppress`),
`pvewatch silence` adds them.

A silence matches with a small syntax, `key=glob` pairs joined by commas, all of which
must hold (`key!=glob` must not):

    cluster=lab,resource=qemu/100,type=guest.*

Keys: `cluster`, `type` (event type), `resource` (`qemu/100`, `node/pve1`, ...), `node`,
`vmid`, `name`, `pool`, `tag` (any of the guest's tags), `severity`. Globs are
`fnmatch` patterns (`*`, `?`, `[...]`), case-sensitive; an absent field matches `!=`
only.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from datetime import datetime

from pvewatch.model import Event, format_time

MATCH_KEYS = ("cluster", "type", "resource", "node", "vmid", "name", "pool", "tag", "severity")
_PAIR = re.compile(r"\s*([a-z]+)\s*(!?=)\s*(.*?)\s*")


@dataclass(frozen=True, slots=True)
class Matcher:
    key: str
    pattern: str
    negate: bool = False

    def __str__(self) -> str:
        return f"{self.key}{'!=' if self.negate else '='}{self.pattern}"

    def matches(self, event: Event) -> bool:
        hit = any(fnmatch.fnmatchcase(v, self.pattern) for v in _values(event, self.key))
        return hit != self.negate


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    comment: str = ""
    created_by: str | None = None

    @property
    def match(self) -> str:
        return ",".join(str(m) for m in self.matchers)

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, event: Event) -> bool:
        return all(m.matches(event) for m in self.matchers)

    def state(self, now: datetime) -> str:
        if self.active(now):
            return "active"
        return "pending" if now < self.starts_at else "expired"

    def to_dict(self, now: datetime) -> dict[str, object]:
        """As `pvewatch silence list --json` and the read API show it."""
        return {
            "id": self.id,
            "match": self.match,
            "starts_at": format_time(self.starts_at),
            "ends_at": format_time(self.ends_at),
            "comment": self.comment,
            "created_by": self.created_by,
            "state": self.state(now),
        }


def parse_match(text: str) -> tuple[Matcher, ...]:
    """`cluster=lab,type=guest.*` → matchers; ValueError says what is wrong."""
    matchers = []
    for part in text.split(","):
        m = _PAIR.fullmatch(part)
        if m is None or not m.group(3):
            raise ValueError(f"--match: expected KEY=GLOB or KEY!=GLOB, got {part.strip()!r}")
        key, op, pattern = m.groups()
        if key not in MATCH_KEYS:
            raise ValueError(f"--match: unknown key {key!r}; use one of {', '.join(MATCH_KEYS)}")
        matchers.append(Matcher(key, pattern, op == "!="))
    if not any(not m.negate for m in matchers):
        raise ValueError("--match: give at least one KEY=GLOB (only != would silence a lot)")
    return tuple(matchers)


def _values(event: Event, key: str) -> list[str]:
    r = event.resource
    if key == "cluster":
        return [event.cluster]
    if key == "type":
        return [event.type]
    if key == "severity":
        return [event.severity.value]
    if r is None:
        return []
    if key == "tag":
        return list(r.tags)
    value = {"resource": r.id, "node": r.node, "vmid": r.vmid, "name": r.name, "pool": r.pool}[key]
    return [] if value is None else [str(value)]
