"""The prometheus sink: no destination of its own, it shapes /metrics.

    sinks:
      metrics:
        type: prometheus
        state_metrics: true      # the pvewatch_resource_* and pvewatch_cluster_* series
        filter: {types: ["guest.*"]}   # the events pvewatch_events_total counts

Metrics-only: its row has no builder, so it gets no outbox rows and no Deliverer;
`pvewatch.observability.metrics` reads its options.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pvewatch.config.reading import Ctx, get_bool
from pvewatch.config.types import Config, SinkOptions
from pvewatch.net.probe import Check
from pvewatch.sinks.base import Sink, SinkType


@dataclass(frozen=True, slots=True)
class PrometheusOptions(SinkOptions):
    state_metrics: bool = True


def parse_prometheus_options(ctx: Ctx, path: str, m: Mapping[str, object]) -> PrometheusOptions:
    return PrometheusOptions(get_bool(ctx, f"{path}.state_metrics", m.get("state_metrics"), True))


async def check_prometheus(options: PrometheusOptions, config: Config) -> list[Check]:
    """Served on the http listener, nothing to connect to."""
    if config.http.listen:
        return [Check("ok", "served", f"/metrics on {config.http.listen}")]
    return [Check("warn", "served", "nowhere: http.listen is off")]


PROMETHEUS: SinkType[PrometheusOptions, Sink] = SinkType(
    options=PrometheusOptions,
    keys=frozenset({"state_metrics"}),
    parse=parse_prometheus_options,
    check=check_prometheus,
)
