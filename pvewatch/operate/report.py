"""What `check-config --connect` found, and how it is printed. Pure.

A report is a list of sections (a cluster endpoint, a sink), each a list of checks. A
check is `ok`, `warn` (works, but something is missing) or `fail` (will not work); `hint`
lines tell what to do about the check above them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pvewatch.net.probe import Check, Status

_MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "hint": "    "}


@dataclass(slots=True)
class Section:
    title: str  # "cluster prod: https://pve1:8006", "sink hook (webhook)"
    checks: list[Check] = field(default_factory=list)

    def add(self, status: Status, what: str, message: str) -> None:
        self.checks.append(Check(status, what, message))


def render(sections: Iterable[Section]) -> list[str]:
    lines: list[str] = []
    for section in sections:
        lines.append(section.title)
        for check in section.checks:
            label = f"{check.what}: " if check.status != "hint" else "  -> "
            lines.append(f"  {_MARK[check.status]}  {label}{check.message}")
    return lines


def exit_code(sections: Iterable[Section]) -> int:
    """0 when nothing failed (warnings allowed), 1 otherwise."""
    failed = any(c.status == "fail" for s in sections for c in s.checks)
    return 1 if failed else 0
