"""Comparing the simulator's answers with real (captured) ones by shape: which keys each
object has and the JSON type of each value, so a `1` that should be `true`, a string
epoch or a missing key fails, while the values themselves may differ.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from tests.simulator.support import HEALTH_CAPTURED


def captured(name: str) -> Any:
    """A captured answer (FACTS-health.md's captured/ directory) as parsed JSON."""
    return json.loads(Path(HEALTH_CAPTURED, name).read_text())


def kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    return {int: "int", float: "float", str: "str", list: "list", dict: "dict"}[type(value)]


def assert_items_like(
    ours: list[dict[str, Any]], real: list[dict[str, Any]], group: str | None = None
) -> None:
    """Each of our objects has every key all real objects (of its `group`) have, no key
    none of them has, and values of a type the real ones use for that key."""
    by_group: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for item in real:
        by_group[item.get(group) if group else None].append(item)
    assert ours, "nothing to compare"
    for item in ours:
        key = item.get(group) if group else None
        assert key in by_group, f"{group}={key!r} does not occur in the real answer"
        assert_object_like(item, by_group[key])


def assert_object_like(ours: dict[str, Any], real: list[dict[str, Any]]) -> None:
    required = set.intersection(*(set(r) for r in real))
    allowed = set.union(*(set(r) for r in real))
    assert required <= set(ours), f"missing {sorted(required - set(ours))} in {ours}"
    assert set(ours) <= allowed, f"not in the real answer: {sorted(set(ours) - allowed)}"
    for key, value in ours.items():
        real_kinds = {kind(r[key]) for r in real if key in r}
        assert kind(value) in real_kinds, f"{key}: {kind(value)} where PVE has {real_kinds}"
