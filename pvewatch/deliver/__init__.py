"""Delivery: outbox → sink, at least once, in order per resource.

- `policy`     when to retry and when to give up (RetryPolicy, decide) — pure
- `schedule`   which due rows form one message, and the rate limit — pure
- `settings`   a sink's delivery keys with their defaults
- `attempt`    one send, and the outcome written to the outbox and the log
- `deliverer`  the loop of one sink (Deliverer): reads the outbox, sends, records

Retry, backoff, Retry-After, ordering, grouping, rate limits and dead letters live here,
never inside a sink: a sink makes one attempt and says whether a retry could help.
"""
