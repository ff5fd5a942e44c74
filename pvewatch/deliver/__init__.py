"""Delivery: outbox → sink, at least once, in order per resource.

- `policy`     when to retry and when to give up (RetryPolicy, decide) — pure
- `schedule`   which due rows form one message, and the rate limit — pure
- `settings`   a sink's delivery keys with their defaults
- `attempt`    one send, and the outcome written to the outbox and the log
- `deliverer`  the loop of one sink (Deliverer): reads the outbox, sends, records

Retry, backoff, Retry-After, ordering, grouping, rate limits and dead letters live here,
never inside a sink: a sink makes one attempt and says whether a retry could help.
"""

from __future__ import annotations

from pvewatch.deliver.attempt import sink_disabled_event
from pvewatch.deliver.deliverer import Deliverer, Outbox
from pvewatch.deliver.policy import Dead, Delivered, Outcome, Retry, RetryPolicy, decide
from pvewatch.deliver.settings import Settings, settings_for

__all__ = [
    "Dead",
    "Delivered",
    "Deliverer",
    "Outbox",
    "Outcome",
    "Retry",
    "RetryPolicy",
    "Settings",
    "decide",
    "settings_for",
    "sink_disabled_event",
]
