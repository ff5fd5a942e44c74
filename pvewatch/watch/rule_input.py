"""What the rules know of one poll: `RuleInput`. Its own module so that every rule step
(`cause`, `tasks`, `thresholds`, `shape`) takes it without importing `rules`, which
imports them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pvewatch.model import Event, Snapshot


@dataclass(frozen=True, slots=True)
class RuleInput:
    old: Snapshot | None  # the last committed snapshot; None before the baseline
    new: Snapshot  # this poll's; on a failed poll (`polled` False), the last known one
    events: list[Event]  # the raw diff, after the source health events
    tasks: list[dict[str, Any]] | None  # /cluster/tasks rows; None: could not be read
    now: datetime
    late: bool  # the diff covers a time the daemon was not watching (restart)
    # Per resource id, numbers normalize drops: usage ratios "cpu", "memory", "disk" (0..1,
    # only where PVE reports them) and "uptime" (seconds). See thresholds.usage().
    metrics: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    # The tails of the logs of tasks newly finished with an error, by UPID (fetched by the
    # pipeline for what `tasks.logs_wanted` names, bounded).
    task_logs: Mapping[str, Sequence[str]] = field(default_factory=dict)
    polled: bool = True  # False: the poll failed; `events` are the source events only
