"""Poll failures are not changes: the debounce that turns failed polls into one
`source.unreachable` event, and the first good poll after it into one `source.recovered`.

Pure: the caller passes the stored `SourceHealth` and `now`, and stores what comes back.
`source.unreachable` starts the condition `source.unreachable`; the shaping step
(`watch.shape`) keeps it open and marks the `source.recovered` that `resolves` it.
"""

from __future__ import annotations

from datetime import datetime

from pvewatch.model import EVENT_TYPES, Event, SourceHealth, event_id


def _source_event(
    cluster: str, type_: str, now: datetime, summary: str, details: dict[str, object]
) -> Event:
    return Event(
        id=event_id(cluster, type_, "source", None, now),
        type=type_,
        time=now,
        cluster=cluster,
        severity=EVENT_TYPES[type_].severity,
        summary=summary,
        condition="source.unreachable" if type_ == "source.unreachable" else None,
        details={k: v for k, v in details.items() if isinstance(v, str | int | float)},
    )


def poll_failed(
    health: SourceHealth, cluster: str, error_kind: str, threshold: int, now: datetime
) -> tuple[SourceHealth, list[Event]]:
    """One more failed poll. Emits `source.unreachable` once, when the threshold is reached."""
    failures = health.consecutive_failures + 1
    new = SourceHealth(failures, health.unreachable, error_kind)
    if health.unreachable or failures < threshold:
        return new, []
    event = _source_event(
        cluster,
        "source.unreachable",
        now,
        f"cannot poll cluster {cluster}: {failures} consecutive polls failed ({error_kind})",
        {"error": error_kind, "failures": failures},
    )
    return SourceHealth(failures, True, error_kind), [event]


def poll_succeeded(
    health: SourceHealth, cluster: str, now: datetime
) -> tuple[SourceHealth, list[Event]]:
    """A good poll. Emits `source.recovered` only if `source.unreachable` was emitted."""
    if not health.unreachable:
        return SourceHealth(), []
    event = _source_event(
        cluster,
        "source.recovered",
        now,
        f"cluster {cluster} can be polled again after {health.consecutive_failures} failed polls",
        {"failures": health.consecutive_failures, "error": health.last_error or "unknown"},
    )
    return SourceHealth(), [event]
