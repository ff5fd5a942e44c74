"""The `sinks:` section, and the one place that validates each sink type's options.

    sinks:
      audit:                 # the sink's name (the outbox key)
        type: log            # common key: picks the entry in SINK_TYPES
        format: json         # the sink's own options, checked by that entry
        path: events.jsonl

Every problem is reported with its key path (`sinks.audit.format: ...`) together with
the rest of the file's problems. The resulting `SinkConfig.options` hold every option of
the type, defaults filled in and paths resolved, so a sink's `from_config` only reads them.

Adding a sink type (a big one gets its own module, as `pvewatch.config.webhook`):
1. write `_<type>_options(ctx, path, m) -> dict[str, object]` below: read each option of
   `m` with the getters of `pvewatch.config.reading` (secrets with `get_secret`, so
   `X_file` works) and return every option with its default;
2. add one entry `"<type>": SinkType(frozenset({...its keys...}), _<type>_options)` to
   `SINK_TYPES`; unknown keys are then refused with a did-you-mean hint;
3. add its cases to tests/config/test_sinks.py.
Options shared by every type (`filter`, `send_resolved`: `pvewatch.config.routing`;
`retry`, `concurrency`, `max_per_minute`, `group_wait_secs`: `pvewatch.config.delivery`) go
in `COMMON_KEYS` and are read in `_sink`, not in each type's function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from pvewatch.config.delivery import DELIVERY_KEYS, delivery_options
from pvewatch.config.reading import (
    NAME,
    Ctx,
    get_bool,
    get_enum,
    get_mapping,
    get_str,
    kind,
    quote,
)
from pvewatch.config.routing import ROUTING_KEYS, routing_options
from pvewatch.config.types import SinkConfig
from pvewatch.config.webhook import WEBHOOK_KEYS, webhook_options


def _log_options(ctx: Ctx, path: str, m: Mapping[str, object]) -> dict[str, object]:
    log_path = get_str(ctx, f"{path}.path", m.get("path"), "-")
    if log_path == "":
        ctx.add(f"{path}.path", 'must not be empty (use "-" for stdout)')
    elif log_path and log_path != "-":
        log_path = str(ctx.config_dir / log_path)
    return {
        "format": get_enum(ctx, f"{path}.format", m.get("format"), ("text", "json")),
        "path": log_path or "-",
        "fsync": get_bool(ctx, f"{path}.fsync", m.get("fsync"), False),
    }


def _prometheus_options(ctx: Ctx, path: str, m: Mapping[str, object]) -> dict[str, object]:
    return {"state_metrics": get_bool(ctx, f"{path}.state_metrics", m.get("state_metrics"), True)}


@dataclass(frozen=True, slots=True)
class SinkType:
    keys: frozenset[str]  # the sink's own option keys, beside COMMON_KEYS
    # Reads the options (unknown keys already removed), reports problems to the Ctx and
    # returns every option with its default.
    check: Callable[[Ctx, str, Mapping[str, object]], dict[str, object]]


# One entry per sink type; pvewatch.sinks.SINK_TYPES holds the matching builders.
SINK_TYPES: Mapping[str, SinkType] = MappingProxyType(
    {
        "log": SinkType(frozenset({"format", "path", "fsync"}), _log_options),
        "webhook": SinkType(WEBHOOK_KEYS, webhook_options),
        "prometheus": SinkType(frozenset({"state_metrics"}), _prometheus_options),
    }
)
# Types that shape /metrics (pvewatch.metrics) instead of receiving events: they get no
# outbox rows and no Deliverer, and pvewatch.sinks has no builder for them. Their `filter`
# picks the events that pvewatch_events_total counts.
METRICS_ONLY_TYPES = frozenset({"prometheus"})
COMMON_KEYS = frozenset({"type"}) | ROUTING_KEYS | DELIVERY_KEYS
DEFAULT_SINKS = (SinkConfig("console", "log", {"format": "text", "path": "-", "fsync": False}),)


def sinks_section(ctx: Ctx, value: object) -> tuple[SinkConfig, ...]:
    m = None if value is None else get_mapping(ctx, "sinks", value, None)
    if not m:
        return DEFAULT_SINKS
    sinks = (_sink(ctx, name, options) for name, options in m.items())
    return tuple(sink for sink in sinks if sink is not None)


def _sink(ctx: Ctx, name: str, options: object) -> SinkConfig | None:
    path = f"sinks.{name}"
    if not NAME.fullmatch(name):
        ctx.add(path, "sink names use lower-case letters, digits, _ and - only")
    sink_type = _sink_type(ctx, path, options)
    if sink_type is None:
        return None
    spec = SINK_TYPES[sink_type]
    checked = get_mapping(ctx, path, options, COMMON_KEYS | spec.keys) or {}
    sink_filter, send_resolved = routing_options(ctx, path, checked)
    delivery = delivery_options(ctx, path, checked)
    own = {k: v for k, v in checked.items() if k not in COMMON_KEYS}
    options = spec.check(ctx, path, own)
    return SinkConfig(name, sink_type, options, sink_filter, send_resolved, delivery)


def _sink_type(ctx: Ctx, path: str, options: object) -> str | None:
    if not isinstance(options, dict):
        ctx.add(path, f"expected a mapping with a type, got {kind(options)}")
        return None
    known = ", ".join(sorted(SINK_TYPES))
    value = options.get("type")
    if value is None:
        ctx.add(f"{path}.type", f"required (one of {known})")
        return None
    sink_type = get_str(ctx, f"{path}.type", value)
    if sink_type is not None and sink_type not in SINK_TYPES:
        ctx.add(f"{path}.type", f"expected one of {known}, got {quote(sink_type)}")
        return None
    return sink_type
