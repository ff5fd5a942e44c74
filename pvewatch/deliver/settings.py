"""How one sink is fed: its delivery keys (`pvewatch.config.types.DeliveryConfig`) with the
defaults for what its config leaves out, which depend on the sink."""

from __future__ import annotations

from dataclasses import dataclass

from pvewatch.config.types import SinkConfig
from pvewatch.sinks import Sink


@dataclass(frozen=True, slots=True)
class Settings:
    """Sends in flight at once; sends per minute (None: no limit); how long a new burst
    collects before a grouping sink gets it."""

    concurrency: int = 1
    max_per_minute: int | None = None
    group_wait_secs: float = 0.0


# Defaults of the delivery keys a sink's config leaves out.
DEFAULT_CONCURRENCY = 4  # a log sink writes one line at a time: 1
CHAT_MAX_PER_MINUTE = 30  # grouping (chat) formats; Discord allows 30 per minute per webhook
CHAT_GROUP_WAIT_SECS = 5.0


def settings_for(cfg: SinkConfig, sink: Sink) -> Settings:
    """The settings of a sink: its delivery keys, with defaults for what it leaves out."""
    d, chat = cfg.delivery, sink.groups
    per_minute = d.max_per_minute
    if per_minute is None:
        per_minute = CHAT_MAX_PER_MINUTE if chat else 0
    group_wait = d.group_wait_secs
    if group_wait is None:
        group_wait = CHAT_GROUP_WAIT_SECS if chat else 0.0
    return Settings(
        concurrency=d.concurrency or (1 if cfg.type == "log" else DEFAULT_CONCURRENCY),
        max_per_minute=per_minute or None,  # 0: no limit
        group_wait_secs=group_wait,
    )
