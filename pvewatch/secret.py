"""A string that never shows itself in a repr, a log line, a traceback or an event."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

# Below this length a value is not masked on its own (it would mask common words); the
# part after a `=` (a PVE token's secret) is masked from this length.
_MIN_MASKED_CHARS = 4
_MIN_TAIL_CHARS = 8


class Secret:
    """Holds a secret value; only `reveal()` gives it out."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def secret_values(obj: object) -> list[str]:
    """Every secret value held in `obj` (dataclasses, mappings and sequences of them, such
    as a Config), longest first, plus the part after the last `=` of each (the secret of
    a PVE token, a token in a URL's query), so that a log can mask them."""
    values: set[str] = set()
    pending: list[object] = [obj]
    while pending:
        item = pending.pop()
        if isinstance(item, Secret):
            value = item.reveal()
            if len(value) >= _MIN_MASKED_CHARS:
                values.add(value)
            tail = value.rpartition("=")[2]
            if tail != value and len(tail) >= _MIN_TAIL_CHARS:
                values.add(tail)
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            pending += [getattr(item, f.name) for f in dataclasses.fields(item)]
        elif isinstance(item, Mapping):
            pending += list(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            pending += list(item)
    return sorted(values, key=lambda v: (-len(v), v))
