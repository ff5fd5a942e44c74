"""Rows of `/cluster/resources` → a `Snapshot` of what can change meaningfully.

Pure: no clock, no I/O. Whatever the server sent, `normalize` returns a snapshot (rows it
cannot use are skipped, wrong-typed fields are coerced or dropped), because the daemon must
never crash on a server's answer. `carry_forward` then hides PVE's "no information" status
(`unknown`) of guests behind the last status that was known.

`Normalizer` is `normalize` poll after poll: most rows differ from the last poll only in
their counters, and for those it hands back the same `Resource` object as last time, so
that diff, store and metrics skip unchanged resources by identity.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from operator import is_, itemgetter
from typing import Any, NamedTuple, TypeGuard

from pvewatch.model import JSONValue, Resource, Snapshot, same_resources
from pvewatch.watch.rows import Known, StableRows

# Numbers that move on every poll (gauges and counters). They are never changes, and keeping
# them out of the snapshot is what makes an unchanged cluster compare equal.
COUNTER_FIELDS: frozenset[str] = frozenset(
    {
        "cpu",
        "maxcpu",
        "mem",
        "maxmem",
        "memhost",
        "disk",
        "maxdisk",
        "netin",
        "netout",
        "diskread",
        "diskwrite",
        "uptime",
        "swap",
        "maxswap",
        # PVE 9 pressure-stall figures, should they ever reach this endpoint.
        "pressurecpusome",
        "pressurecpufull",
        "pressureiosome",
        "pressureiofull",
        "pressurememorysome",
        "pressurememoryfull",
    }
)

GUEST_TYPES: frozenset[str] = frozenset({"qemu", "lxc"})

_CORE_FIELDS = frozenset(
    {"id", "type", "status", "node", "name", "vmid", "pool", "tags"}
    | {"lock", "hastate", "template", "content"}
)
_NOT_ATTRS = COUNTER_FIELDS | _CORE_FIELDS
_FLAG_ATTRS = frozenset({"shared"})
# The fields an implausible() check requires of a row, by type.
_REQUIRED = {"qemu": ("node",), "lxc": ("node",), "node": ("node", "status")}
_REQUIRED["storage"] = _REQUIRED["node"]
# PVE joins tags with `;`, hand-edited configs use `,` or spaces; content is a comma list.
_LIST_SEPARATORS = re.compile(r"[;,\s]+")
_TRUE_TEXT = frozenset({"1", "true"})
_MAX_VMID_DIGITS = 18  # int() of a longer digit string may raise (int_max_str_digits)


def normalize(cluster: str, rows: Iterable[object], now: datetime) -> Snapshot:
    """Build the snapshot of one poll. Duplicate ids: the last row wins."""
    return Normalizer()(cluster, rows, now)


class _Seen(NamedTuple):
    """A row of the last poll: how to read its keys (stable ones first), how many keys it
    had, how many of them are stable, their values, and the resource made of them."""

    read: Callable[[dict[Any, Any]], tuple[object, ...]]
    keys: int
    stable: int
    values: tuple[object, ...]
    types: tuple[type, ...]
    resource: Resource


class Normalizer:
    """`normalize` for one cluster, poll after poll. A row with the same keys and the same
    stable values as the row of its id last poll (only counters moved) is not normalized
    again: the resource made last time is reused, found with one lookup and one compare
    (5 times cheaper at 10,000 rows). The output is always what `normalize` gives."""

    def __init__(self) -> None:
        self._seen: dict[str, _Seen] = {}
        # The same for `StableRows` (rows.py), which compare as tuples; one of the two is
        # kept, the one of the last poll.
        self._known: Known = {}
        self._known_fields: tuple[str, ...] = ()
        # The resources the last `StableRows` gave (empty after dict rows).
        self._last: dict[str, Resource] = {}

    def __call__(
        self, cluster: str, rows: Iterable[object] | StableRows, now: datetime
    ) -> Snapshot:
        if isinstance(rows, StableRows):
            return self._stable(cluster, rows, now)
        self._known, self._last = {}, {}
        resources: dict[str, Resource] = {}
        seen: dict[str, _Seen] = {}
        last = self._seen
        # The same tags/content strings repeat across rows; split each only once per poll.
        split_cache: dict[str, tuple[str, ...]] = {}
        for row in rows:
            if not isinstance(row, dict):
                continue
            rid = row.get("id")
            if not isinstance(rid, str):
                continue  # not a resource (and maybe not hashable)
            memo = last.get(rid)
            if memo is not None and len(row) == memo.keys:
                try:
                    values = memo.read(row)[: memo.stable]
                except KeyError:  # the same number of keys, but not the same keys
                    values = None
                # 1 == 1.0 == True, but they normalize differently: the types must match
                # too (and are only str, int and None: see _remember).
                if values == memo.values and tuple(map(type, values)) == memo.types:
                    resources[rid] = memo.resource
                    seen[rid] = memo
                    continue
            resource = _resource(row, split_cache)
            if resource is not None:
                resources[resource.id] = resource
                if (memo := _remember(row, resource)) is not None:
                    seen[rid] = memo
        self._seen = seen
        return Snapshot(cluster=cluster, resources=resources, taken_at=now)

    def _stable(self, cluster: str, rows: StableRows, now: datetime) -> Snapshot:
        known = self._known if rows.fields == self._known_fields else {}
        split_cache: dict[str, tuple[str, ...]] = {}
        resources, self._known = rows.reuse(known, lambda row: _resource(row, split_cache))
        if self._known is known and _same_order(resources, self._last):
            # Every row as known, in the order of last time: the mapping of last time, so
            # that carry_forward, diff and the store see it unchanged in one `is`.
            resources = self._last
        self._known_fields, self._seen, self._last = rows.fields, {}, resources
        return Snapshot(cluster=cluster, resources=resources, taken_at=now)


def _same_order(a: dict[str, Resource], b: dict[str, Resource]) -> bool:
    """The same objects in the same order. A resource's key is its id (`reuse`), so the
    keys are the same too; compared by address only, in C: 0.1 ms at 10,000."""
    return len(a) == len(b) and all(map(is_, a.values(), b.values()))


_PLAIN_TYPES = frozenset({str, int, type(None)})


def _remember(row: dict[Any, Any], resource: Resource) -> _Seen | None:
    """How to recognize this row next poll; None for a row with stable values other than
    strings, integers and nulls (what PVE sends), whose equality would not be exact."""
    stable = [k for k in row if k not in COUNTER_FIELDS]
    values = tuple(row[k] for k in stable)
    types = tuple(map(type, values))
    if not _PLAIN_TYPES.issuperset(types):
        return None
    read = itemgetter(*stable, *(k for k in row if k in COUNTER_FIELDS))
    # itemgetter of one key returns the value itself, not a 1-tuple: read through a tuple.
    reader = read if len(row) > 1 else lambda r: (read(r),)
    return _Seen(reader, len(row), len(stable), values, types, resource)


def implausible(old: Snapshot | None, rows: Sequence[object] | StableRows) -> str | None:
    """Why this /cluster/resources answer cannot be a real one, or None. Diffing it would
    report false changes, so the poll fails instead (a bad response):

    - PVE lists every node of the cluster whatever the caller may see (FACTS §2.7), so an
      empty answer, or one without a single node row after snapshots that had nodes, is a
      broken answer (a proxy, a half-started pveproxy), not a cluster whose guests all
      went away. An empty first answer is refused too: as a baseline, it would make the
      next good poll report every resource as added;
    - guest, node and storage rows always carry their node, and node and storage rows
      their status (FACTS §2.3); a row without them would read as a migration to nowhere
      or a status change. (A guest row without status is "no information", as `unknown`.)
    """
    if isinstance(rows, StableRows):
        if rows.surely_plausible(_REQUIRED):
            return None
        rows = rows.dicts()
    if not rows:
        return "the answer is an empty list (PVE always lists its nodes)"
    has_node = False
    for number, row in enumerate(rows):
        kind = row.get("type") if isinstance(row, dict) else None
        if not isinstance(row, dict) or not isinstance(kind, str) or kind not in _REQUIRED:
            continue
        has_node = has_node or kind == "node"
        for key in _REQUIRED[kind]:
            if _text(row.get(key)) is None:
                return f"item {number} ({row.get('id')!r}) has no `{key}`"
    if not has_node and old is not None and any(r.type == "node" for r in old.resources.values()):
        return "the answer lists no node at all (PVE always lists its nodes)"
    return None


def carry_forward(old: Snapshot | None, new: Snapshot) -> Snapshot:
    """Keep the last known status (and name, template) of guests that PVE now reports as
    `unknown`: that status means "no metrics" (node silent for > 5 min, or a guest created
    before its first pvestatd cycle), not a state of the guest. Nodes and storages are not
    carried: their `unknown` is a real status."""
    if old is None or same_resources(old.resources, new.resources):
        return new  # a guest unknown now was unknown before: the same object, its status
    carried: dict[str, Resource] | None = None
    for rid, resource in new.resources.items():
        # A guest row without status says no more than `unknown` does.
        if resource.status not in (None, "unknown") or resource.type not in GUEST_TYPES:
            continue
        before = old.resources.get(rid)
        if before is None or before.status in (None, "unknown"):
            continue
        if carried is None:
            carried = dict(new.resources)
        # A skeletal row has no name and no template: what was known stays true.
        carried[rid] = replace(
            resource,
            status=before.status,
            name=resource.name if resource.name is not None else before.name,
            template=before.template,
        )
    if carried is None:
        return new
    return Snapshot(cluster=new.cluster, resources=carried, taken_at=new.taken_at)


def _resource(
    row: dict[object, object], split_cache: dict[str, tuple[str, ...]]
) -> Resource | None:
    rid = row.get("id")
    if not isinstance(rid, str) or not rid:
        return None
    rtype = _text(row.get("type")) or _type_from_id(rid)
    extra = row.keys() - _NOT_ATTRS
    return Resource(
        id=rid,
        type=rtype,
        status=_text(row.get("status")),
        node=_text(row.get("node")),
        name=_text(row.get("name")),
        vmid=_vmid(row.get("vmid"), rid, rtype),
        pool=_text(row.get("pool")),
        tags=_split(row.get("tags"), split_cache),
        lock=_text(row.get("lock")),
        hastate=_text(row.get("hastate")),
        template=_flag(row.get("template")),
        content=_split(row.get("content"), split_cache),
        attrs=_attrs(row, extra) if extra else {},
    )


def _text(value: object) -> str | None:
    """A label: strings as sent (empty means unset); integers as text, because Perl's JSON
    encoder emits a numeric-looking string as a number once it was used as one."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _type_from_id(rid: str) -> str:
    # `qemu/100` → qemu; `/pool/prod` → pool.
    return rid.lstrip("/").split("/", 1)[0] or "unknown"


def _vmid(value: object, rid: str, rtype: str) -> int | None:
    if isinstance(value, bool):
        value = None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _is_small_number(value):
        return int(value)
    if rtype in GUEST_TYPES:
        suffix = rid.rpartition("/")[2]
        if _is_small_number(suffix):
            return int(suffix)
    return None


def _is_small_number(text: str) -> bool:
    return 0 < len(text) <= _MAX_VMID_DIGITS and text.isascii() and text.isdigit()


def _flag(value: object) -> bool:
    """PVE sends 0/1; other clients and hand-written data say true/false."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value == 1
    if isinstance(value, str):
        return value.strip().lower() in _TRUE_TEXT
    return False


def _split(value: object, cache: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """A PVE list (tags, content) as a sorted tuple of distinct items, since PVE returns
    the same list in varying order. A tag may contain `+`: it is not a separator."""
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        value = ";".join(item for item in map(_text, value) if item)
    elif not isinstance(value, str):
        text = _text(value)
        return (text,) if text else ()
    cached = cache.get(value)
    if cached is None:
        cached = tuple(sorted({item for item in _LIST_SEPARATORS.split(value) if item}))
        cache[value] = cached
    return cached


def _attrs(row: Mapping[object, object], keys: Iterable[object]) -> dict[str, JSONValue]:
    """Other stable fields, kept as labels: scalar values only, in a stable key order."""
    attrs: dict[str, JSONValue] = {}
    for key in sorted(k for k in keys if isinstance(k, str)):
        value = row[key]
        if key in _FLAG_ATTRS:
            attrs[key] = _flag(value)
        elif _is_scalar(value):
            attrs[key] = value
    return attrs


def _is_scalar(value: object) -> TypeGuard[str | int | float | None]:
    if isinstance(value, float):
        return math.isfinite(value)  # NaN/inf are not JSON and break equality
    return value is None or isinstance(value, str | int)
