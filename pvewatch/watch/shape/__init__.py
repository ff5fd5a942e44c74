"""Shaping: what of a poll's events is sent, what is only recorded, and what comes later.

    shape(events, ctx, config, state, now) -> (events, new_state)

Pure: no clock (`now` is given), no I/O. `state` is the JSON-able object this step
returned at the previous poll of the cluster (kept in the store under "shape"), so held
transitions, flapping windows and open conditions survive restarts.

Every event that goes in comes out (suppressed ones with `suppressed` set, so they are
recorded for history but sent nowhere); shaping may add events (a held transition that
persisted, `*.flapping`, `*.flapping_ended`, reminders).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pvewatch.model import Event, Snapshot


@dataclass(frozen=True, slots=True)
class ShapeInput:
    """What shaping needs to know about the poll besides its events."""

    old: Snapshot | None
    new: Snapshot
    late: bool = False


@dataclass(frozen=True, slots=True)
class FlappingConfig:
    # More than `transitions` transitions of one resource within `window_secs` is flapping;
    # it ends once the resource has not changed for `stable_secs`.
    transitions: int = 5
    window_secs: float = 600.0
    stable_secs: float = 600.0


@dataclass(frozen=True, slots=True)
class ShapeConfig:
    # Per event type: how long a transition must persist before it is sent (for_secs).
    hold_secs: Mapping[str, float] = field(default_factory=dict)
    flapping: FlappingConfig | None = field(default_factory=FlappingConfig)
    # Re-send an open problem condition this often while it lasts (None: never).
    repeat_interval_secs: float | None = None


def shape(
    events: Sequence[Event],
    ctx: ShapeInput,
    config: ShapeConfig,
    state: Mapping[str, Any],
    now: datetime,
) -> tuple[list[Event], dict[str, Any]]:
    """The events to record (suppressed or not) and the state to keep for the next poll."""
    return list(events), dict(state)


__all__ = ["FlappingConfig", "ShapeConfig", "ShapeInput", "shape"]
