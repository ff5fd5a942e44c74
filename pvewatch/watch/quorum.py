"""Whether a cluster has quorum, from its `/cluster/status` answer (FACTS.md §4). Pure.

PVE sends one `type: cluster` entry with `quorate` 0 or 1, and one `type: node` entry per
node. A single node without a cluster sends only its node entry: it is its own quorum.
Anything else says nothing about quorum (None: unknown, which is no quorum event): a
cluster entry without `quorate` or with a value that is not 0/1, entries that disagree,
an answer with several nodes but no cluster entry, or no entries at all.
"""

from __future__ import annotations

from collections.abc import Sequence

_FLAGS: dict[object, bool] = {1: True, 0: False, "1": True, "0": False}


def read_quorate(rows: Sequence[object]) -> bool | None:
    """True (quorate), False (quorum lost) or None (unknown)."""
    entries = [r for r in rows if isinstance(r, dict)]
    clusters = [r for r in entries if r.get("type") == "cluster"]
    if clusters:
        flags = {_flag(r.get("quorate")) for r in clusters}
        return flags.pop() if len(flags) == 1 else None
    nodes = [r for r in entries if r.get("type") == "node"]
    return True if len(nodes) == 1 else None


def _flag(value: object) -> bool | None:
    """0/1 as PVE sends it (JSON true/false and "0"/"1" read the same); else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | str):
        return _FLAGS.get(value)
    return None
