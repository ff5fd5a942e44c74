"""Checking the JSON of `/_sim/` control calls: each helper returns the value or raises
`ControlError` naming the call and the field, so nothing is applied from a bad request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pvewatch.simulator.edits import ControlError

NODE_NAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$")
MAX_TEXT_CHARS = 64 * 1024


def body_object(body: Any, where: str, allowed: Iterable[str]) -> dict[str, Any]:
    """A JSON object holding only `allowed` keys."""
    if not isinstance(body, dict):
        raise ControlError(f"{where}: expected a JSON object")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        known = ", ".join(sorted(allowed))
        raise ControlError(f"{where}: unknown field(s) {', '.join(unknown)} (known: {known})")
    return body


def epoch(value: Any, where: str, key: str) -> int:
    """Epoch seconds: an integer >= 0 (PVE's timestamps are whole seconds)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ControlError(f"{where}: {key!r} must be epoch seconds (an integer >= 0)")
    return value


def integer(value: Any, where: str, key: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ControlError(f"{where}: {key!r} must be an integer >= {minimum}")
    return value


def number(value: Any, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ControlError(f"{where}: {key!r} must be a number >= 0")
    return float(value)


def text(value: Any, where: str, key: str, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value) or len(value) > MAX_TEXT_CHARS:
        raise ControlError(f"{where}: {key!r} must be a non-empty string (at most 64 KiB)")
    return value


def choice(value: Any, where: str, key: str, allowed: Iterable[str]) -> str:
    options = tuple(allowed)
    if value not in options:
        raise ControlError(f"{where}: {key!r} must be one of {', '.join(options)}; got {value!r}")
    return str(value)


def flag(value: Any, where: str, key: str) -> int:
    """PVE's booleans are 0/1; JSON true/false are accepted too."""
    if value in (0, 1) and not isinstance(value, float):
        return int(value)
    raise ControlError(f"{where}: {key!r} must be 0 or 1 (or true/false)")


def strings(value: Any, where: str, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ControlError(f"{where}: {key!r} must be a list of strings")
    return list(value)


def node_name(value: Any, where: str, key: str = "node") -> str:
    if not isinstance(value, str) or not NODE_NAME.match(value):
        raise ControlError(f"{where}: {key!r} must be a node name, got {value!r}")
    return value
