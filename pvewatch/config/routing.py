"""The framework-owned sink keys `filter:` and `send_resolved:`, for every sink type.

    sinks:
      chat:
        type: webhook
        send_resolved: true      # common keys: ROUTING_KEYS
        filter:
          types: ["guest.*", "node.offline"]
          min_severity: warning
          vmids: [100, "200-299"]
          exclude: {tags: [lab]}

Every problem is reported with its key path, with the rest of the file's problems.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from fnmatch import fnmatchcase

from pvewatch.config.reading import (
    Ctx,
    Invalid,
    get_bool,
    get_enum,
    get_mapping,
    get_str,
    join,
    kind,
    quote,
)
from pvewatch.model import EVENT_TYPES, Severity
from pvewatch.routing import SinkFilter

ROUTING_KEYS = frozenset({"filter", "send_resolved"})
_LIST_KEYS = ("types", "clusters", "nodes", "resource_types", "tags", "pools")
_CRITERIA_KEYS = frozenset({*_LIST_KEYS, "min_severity", "tags_match", "vmids"})
_FILTER_KEYS = _CRITERIA_KEYS | {"exclude"}
_SEVERITIES = tuple(s.value for s in Severity)
_MAX_VMID = 999_999_999
_VMID_RANGE = re.compile(r"\s*([0-9]+)\s*-\s*([0-9]+)\s*")


def routing_options(ctx: Ctx, path: str, m: Mapping[str, object]) -> tuple[SinkFilter | None, bool]:
    """The sink's `filter` (None: every event) and `send_resolved` (default true)."""
    value = m.get("filter")
    sink_filter = None if value is None else parse_filter(ctx, join(path, "filter"), value)
    return sink_filter, get_bool(ctx, join(path, "send_resolved"), m.get("send_resolved"), True)


def parse_filter(ctx: Ctx, path: str, value: object, *, nested: bool = False) -> SinkFilter:
    """A `filter:` mapping (or, `nested`, its `exclude:`, which has no exclude itself)."""
    m = get_mapping(ctx, path, value, _CRITERIA_KEYS if nested else _FILTER_KEYS) or {}
    lists = {key: _strings(ctx, join(path, key), m.get(key)) for key in _LIST_KEYS}
    _warn_unknown_types(ctx, join(path, "types"), lists["types"])
    severity = m.get("min_severity")
    exclude = None
    if m.get("exclude") is not None:
        exclude = parse_filter(ctx, join(path, "exclude"), m["exclude"], nested=True)
        if exclude == SinkFilter():
            ctx.add(join(path, "exclude"), "empty: it would exclude every event")
    return SinkFilter(
        min_severity=None
        if severity is None
        else Severity(get_enum(ctx, join(path, "min_severity"), severity, _SEVERITIES)),
        tags_match=get_enum(ctx, join(path, "tags_match"), m.get("tags_match"), ("any", "all")),
        vmids=_vmids(ctx, join(path, "vmids"), m.get("vmids")),
        exclude=exclude,
        **lists,
    )


def _items(ctx: Ctx, path: str, value: object) -> list[object]:
    if value is None or isinstance(value, Invalid):
        return []
    if not isinstance(value, list):
        ctx.add(path, f"expected a list, got {kind(value)}")
        return []
    if not value:
        ctx.add(path, "empty: list at least one entry, or leave the key out")
    return value


def _strings(ctx: Ctx, path: str, value: object) -> tuple[str, ...]:
    result = []
    for i, item in enumerate(_items(ctx, path, value)):
        s = get_str(ctx, f"{path}[{i}]", item)
        if s == "":
            ctx.add(f"{path}[{i}]", "must not be empty")
        elif s is not None:
            result.append(s)
    return tuple(result)


def _warn_unknown_types(ctx: Ctx, path: str, patterns: tuple[str, ...]) -> None:
    # A warning, not a problem: newer releases add event types.
    for i, pattern in enumerate(patterns):
        if not any(fnmatchcase(t, pattern) for t in EVENT_TYPES):
            ctx.warn(f"{path}[{i}]", f"{quote(pattern)} matches no known event type")


def _vmids(ctx: Ctx, path: str, value: object) -> tuple[tuple[int, int], ...]:
    ranges = []
    for i, item in enumerate(_items(ctx, path, value)):
        r = _vmid_range(item)
        if r is None:
            ctx.add(f"{path}[{i}]", f'expected a VMID or a range "100-199", got {_shown(item)}')
        else:
            ranges.append(r)
    return tuple(ranges)


def _vmid_range(item: object) -> tuple[int, int] | None:
    if isinstance(item, str) and item.strip().isdigit():
        item = int(item)
    if isinstance(item, int) and not isinstance(item, bool):
        low = high = item
    elif isinstance(item, str) and (m := _VMID_RANGE.fullmatch(item)):
        low, high = int(m.group(1)), int(m.group(2))
    else:
        return None
    return (low, high) if 1 <= low <= high <= _MAX_VMID else None


def _shown(item: object) -> str:
    return (
        quote(item) if isinstance(item, str) else str(item) if isinstance(item, int) else kind(item)
    )
