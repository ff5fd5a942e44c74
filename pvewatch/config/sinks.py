"""The `sinks:` section. The keys every sink has are read here; a sink's own keys are read
by its type's row in the table of sink types, which the caller passes in
(`pvewatch.sinks.table.SINK_TYPES`; tests pass their own): the config knows no sink type.

    sinks:
      audit:                 # the sink's name (the outbox key)
        type: log            # common key: picks the row
        format: json         # the sink's own options, read by that row's `parse`
        path: events.jsonl

Every problem is reported with its key path (`sinks.audit.format: ...`) together with
the rest of the file's problems. Keys every type has (`filter`, `send_resolved`:
`pvewatch.config.routing`; `retry`, `concurrency`, `max_per_minute`, `group_wait_secs`:
`pvewatch.config.delivery`) are in `COMMON_KEYS` and read here, not by each type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from pvewatch.config.delivery import DELIVERY_KEYS, delivery_options
from pvewatch.config.reading import NAME, Ctx, get_mapping, get_str, kind, quote
from pvewatch.config.routing import ROUTING_KEYS, routing_options
from pvewatch.config.types import SinkConfig, SinkOptions

COMMON_KEYS = frozenset({"type"}) | ROUTING_KEYS | DELIVERY_KEYS
# With no sinks configured there is one: a text log on stdout (the table has a `log` row).
DEFAULT_SINKS: Mapping[str, object] = {"console": {"type": "log"}}


class OptionsReader(Protocol):
    """What the config needs of a row of the sink table (`pvewatch.sinks.base.SinkType`)."""

    @property
    def keys(self) -> frozenset[str]:
        """The type's own option keys, beside COMMON_KEYS; others are refused."""
        ...

    @property
    def parse(self) -> Callable[[Ctx, str, Mapping[str, object]], SinkOptions]:
        """Reads the type's own keys (unknown ones already removed), reports problems to
        the Ctx and returns every option, with its default when left out."""
        ...


SinkTypes = Mapping[str, OptionsReader]


def sinks_section(ctx: Ctx, value: object, types: SinkTypes) -> tuple[SinkConfig, ...]:
    m = None if value is None else get_mapping(ctx, "sinks", value, None)
    sinks = (_sink(ctx, name, options, types) for name, options in (m or DEFAULT_SINKS).items())
    return tuple(sink for sink in sinks if sink is not None)


def _sink(ctx: Ctx, name: str, options: object, types: SinkTypes) -> SinkConfig | None:
    path = f"sinks.{name}"
    if not NAME.fullmatch(name):
        ctx.add(path, "sink names use lower-case letters, digits, _ and - only")
    sink_type = _sink_type(ctx, path, options, types)
    if sink_type is None:
        return None
    row = types[sink_type]
    checked = get_mapping(ctx, path, options, COMMON_KEYS | row.keys) or {}
    sink_filter, send_resolved = routing_options(ctx, path, checked)
    delivery = delivery_options(ctx, path, checked)
    own = {k: v for k, v in checked.items() if k not in COMMON_KEYS}
    parsed = row.parse(ctx, path, own)
    return SinkConfig(name, sink_type, parsed, sink_filter, send_resolved, delivery)


def _sink_type(ctx: Ctx, path: str, options: object, types: SinkTypes) -> str | None:
    if not isinstance(options, dict):
        ctx.add(path, f"expected a mapping with a type, got {kind(options)}")
        return None
    known = ", ".join(sorted(types))
    value = options.get("type")
    if value is None:
        ctx.add(f"{path}.type", f"required (one of {known})")
        return None
    sink_type = get_str(ctx, f"{path}.type", value)
    if sink_type is not None and sink_type not in types:
        ctx.add(f"{path}.type", f"expected one of {known}, got {quote(sink_type)}")
        return None
    return sink_type
