"""Sinks: where events go. One small file per sink, behind one interface.

A sink makes ONE attempt per `send` and says, through `SinkError(retryable=...)`, whether
trying again could help. Retry, backoff, ordering and dead letters live in
`pvewatch.deliver`, never inside a sink.

Adding a sink = one file in this package + one line in `SINK_TYPES` + its tests, which call
the shared contract check in `tests/sinks/contract.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from pvewatch.config.types import SinkConfig
from pvewatch.errors import ConfigError
from pvewatch.model import Event
from pvewatch.sinks.log import LogSink
from pvewatch.sinks.webhook import WebhookSink


@runtime_checkable
class Sink(Protocol):
    """One destination of events. `name` is the configured sink name (the outbox key);
    `groups` is True when the sink sends a burst of events as one message (chat formats):
    delivery then hands it every due event together."""

    name: str
    groups: bool

    async def send(self, events: Sequence[Event]) -> None:
        """Deliver these events once (one event, or a burst for a grouping sink); raise
        `SinkError(retryable=...)` if that failed."""
        ...

    async def aclose(self) -> None:
        """Release what the sink holds (files, connections). Safe to call twice."""
        ...


# The table of sink types: `type:` in the config picks the builder. A builder trusts
# `cfg.options`: pvewatch.config.sinks (its own SINK_TYPES table) validated them and
# reported every problem. Builders do no I/O, so building a sink touches nothing.
SINK_TYPES: Mapping[str, Callable[[SinkConfig], Sink]] = {
    "log": LogSink.from_config,
    "webhook": WebhookSink.from_config,
}


def build_sink(cfg: SinkConfig) -> Sink:
    """Build the sink `cfg.type` names, or raise ConfigError naming the sink."""
    builder = SINK_TYPES.get(cfg.type)
    if builder is None:
        known = ", ".join(sorted(SINK_TYPES))
        raise ConfigError([f"sinks.{cfg.name}.type: unknown sink type {cfg.type!r} ({known})"])
    return builder(cfg)
