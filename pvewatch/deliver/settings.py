"""How one sink is fed: its delivery keys (`pvewatch.config.types.DeliveryConfig`) with the
defaults for what its config leaves out, which depend on the sink."""

from __future__ import annotations

from dataclasses import dataclass

from pvewatch.sinks.base import OpenSink


@dataclass(frozen=True, slots=True)
class Settings:
    """Sends in flight at once; sends per minute (None: no limit); how long a new burst
    collects before a grouping sink gets it."""

    concurrency: int = 1
    max_per_minute: int | None = None
    group_wait_secs: float = 0.0


# Defaults of the delivery keys a sink's config leaves out.
CHAT_MAX_PER_MINUTE = 30  # grouping (chat) formats; Discord allows 30 per minute per webhook
CHAT_GROUP_WAIT_SECS = 5.0


def settings_for(opened: OpenSink) -> Settings:
    """The settings of a sink: its delivery keys, with defaults for what it leaves out
    (concurrency: its row's; the rest: whether it groups bursts, as chat formats do)."""
    d, chat = opened.config.delivery, opened.sink.groups
    per_minute = d.max_per_minute
    if per_minute is None:
        per_minute = CHAT_MAX_PER_MINUTE if chat else 0
    group_wait = d.group_wait_secs
    if group_wait is None:
        group_wait = CHAT_GROUP_WAIT_SECS if chat else 0.0
    return Settings(
        concurrency=d.concurrency or opened.concurrency,
        max_per_minute=per_minute or None,  # 0: no limit
        group_wait_secs=group_wait,
    )
