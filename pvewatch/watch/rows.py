"""`/cluster/resources` rows as a typed decode gives them: the stable fields only.

A quiet poll at 10,000 guests spent most of its time building a dict of every row
(counters included) only to find that its stable values had not changed. A decoder that
knows the fields (pvewatch/pve/stable.py) gives `StableRows` instead: per row a tuple of
its stable values, counters skipped, and only rows that changed become dicts again and go
through the same `normalize` code, so the snapshot is what the dicts would have given.

The contract a producer keeps, which makes comparing tuples exact:

- `fields` names every field a row may have other than counters, `id` first, spelled as
  sent; a row with any other field is not given as `StableRows` (it is decoded generically);
- a value is a `str`, an `int` (never a `bool`), `None` or `absent` (the row did not have
  the field): `1 == 1.0 == True` cannot make two different rows compare equal; `id` is a
  `str`;
- `row(i)` is the row as a generic decode gives it, without its counters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pvewatch.model import Resource

# What a row was last time: its values and the resource made of them.
Known = dict[str, tuple[tuple[object, ...], Resource]]


@dataclass(frozen=True, slots=True, eq=False)
class StableRows:
    fields: tuple[str, ...]
    values: list[tuple[object, ...]]
    absent: object

    def row(self, index: int) -> dict[Any, Any]:
        return self._dict(self.values[index])

    def _dict(self, values: tuple[object, ...]) -> dict[Any, Any]:
        absent = self.absent
        return {k: v for k, v in zip(self.fields, values, strict=True) if v is not absent}

    def dicts(self) -> list[dict[Any, Any]]:
        return [self.row(index) for index in range(len(self.values))]

    def surely_plausible(self, required: Mapping[str, tuple[str, ...]]) -> bool:
        """True when some row is a node and every row of a type in `required` has those
        fields as non-empty strings. False is no verdict: `implausible` then reads the
        dicts, so that its answer and message are always the dict path's."""
        at = {name: number for number, name in enumerate(self.fields)}
        if "type" not in at or not all(k in at for keys in required.values() for k in keys):
            return False
        wanted = {kind: tuple(at[k] for k in keys) for kind, keys in required.items()}
        type_at, has_node = at["type"], False
        for values in self.values:
            kind = values[type_at]
            for number in wanted.get(kind, ()) if type(kind) is str else ():
                value = values[number]
                if type(value) is not str or not value:
                    return False  # an int is a label too: left to the dict path
            has_node = has_node or kind == "node"
        return has_node

    def reuse(
        self, known: Known, make: Callable[[dict[Any, Any]], Resource | None]
    ) -> tuple[dict[str, Resource], Known]:
        """The resources of these rows (the last row of an id wins), the resource of last
        time for a row whose values are all the same, else `make(row)`; and what to know
        next time."""
        resources: dict[str, Resource] = {}
        made: Known = {}
        last = known.get
        for values in self.values:
            rid: Any = values[0]  # a str: the contract
            memo = last(rid)
            if memo is not None and memo[0] == values:
                resources[rid] = memo[1]
                continue
            resource = make(self._dict(values))
            if resource is not None:
                resources[resource.id] = resource
                made[rid] = (values, resource)
        if not made and len(resources) == len(known):
            return resources, known  # a quiet poll: every row was known, as it was
        return resources, {rid: made.get(rid) or known[rid] for rid in resources}
