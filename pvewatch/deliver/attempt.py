"""One attempt at a message and what is recorded after it: the sink's answer translated
into a SinkError (whatever the sink raised), the outcome written to the outbox and logged,
and the `sink.disabled` event."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from pvewatch.deliver.policy import Dead, Delivered, Outcome, PendingItem, Retry
from pvewatch.errors import SinkError
from pvewatch.model import Event, Severity, event_id
from pvewatch.sinks.base import Sink


class Marks(Protocol):
    """The outbox's writes (pvewatch.deliver.deliverer.Outbox has them)."""

    def mark_delivered(self, outbox_id: int, now: datetime) -> None: ...
    def mark_retry(
        self, outbox_id: int, *, attempts: int, next_attempt_at: datetime, error: str
    ) -> None: ...
    def mark_dead(self, outbox_id: int, *, attempts: int, error: str, now: datetime) -> None: ...


async def send_once(
    sink: Sink, events: Sequence[Event], timeout_secs: float, log: logging.Logger
) -> SinkError | None:
    """One `sink.send`: None when it worked, else the SinkError that says why."""
    try:
        async with asyncio.timeout(timeout_secs):
            await sink.send(events)
    except SinkError as e:
        return e
    except TimeoutError:
        return SinkError(f"no answer within {timeout_secs}s", retryable=True)
    except Exception as e:
        # A sink bug must not end delivery. Its message is not logged: it may carry a
        # URL or header the sink should have kept to itself.
        log.error(
            "sink %s: unexpected %s while sending event %s; will retry",
            sink.name,
            type(e).__name__,
            ", ".join(event.id for event in events),
        )
        return SinkError(f"unexpected {type(e).__name__} in sink", retryable=True)
    return None


async def record(
    outbox: Marks,
    sink: str,
    item: PendingItem,
    outcome: Outcome,
    now: datetime,
    log: logging.Logger,
) -> None:
    """Write `outcome` to the outbox row and say it in the log."""
    event = item.event
    match outcome:
        case Delivered():
            await asyncio.to_thread(outbox.mark_delivered, item.outbox_id, now)
            log.debug("sink %s: delivered event %s", sink, event.id)
        case Retry(at=at, attempts=attempts, error=error):
            await asyncio.to_thread(
                outbox.mark_retry,
                item.outbox_id,
                attempts=attempts,
                next_attempt_at=at,
                error=error,
            )
            wait = (at - now).total_seconds()
            log.warning(
                "sink %s: event %s failed (attempt %d), retry in %.1fs: %s",
                *(sink, event.id, attempts, wait, error),
            )
        case Dead(attempts=attempts, error=error):
            await asyncio.to_thread(
                outbox.mark_dead, item.outbox_id, attempts=attempts, error=error, now=now
            )
            log.error(
                "sink %s: event %s (%s) dead after %d attempt(s): %s",
                *(sink, event.id, event.type, attempts, error),
            )


def sink_disabled_event(sink: str, reason: str, now: datetime) -> Event:
    """`sink.disabled`: recorded for the other sinks when one is disabled."""
    return Event(
        id=event_id("", "sink.disabled", f"sink/{sink}", None, now),
        type="sink.disabled",
        time=now,
        cluster="",
        severity=Severity.CRITICAL,
        summary=f"sink {sink} disabled until pvewatch restarts or reloads: {reason}",
        details={"sink": sink, "error": reason},
    )
