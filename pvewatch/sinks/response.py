"""What an HTTP receiver's answer means for delivery. Pure: the time is an argument.

2xx                      delivered
3xx                      failed for good: redirects are not followed (a moved endpoint
                         must be configured; following it would send the signed body,
                         and any token in the URL, somewhere nobody chose)
408, 409, 425, 429       retried (429: after its Retry-After)
410 Gone                 the endpoint is gone: the sink is disabled (`SinkGone`)
other 4xx                failed for good (a retry would get the same answer)
5xx and anything else    retried (503: after its Retry-After)
"""

from __future__ import annotations

import email.utils
import math
from datetime import UTC, datetime

from pvewatch.errors import SinkError, SinkGone

RETRYABLE_4XX = frozenset({408, 409, 425, 429})
RETRY_AFTER_STATUSES = frozenset({429, 503})
# A Retry-After further out than this is not believed (a typo, or a clock far off).
_MAX_RETRY_AFTER_SECS = 7 * 24 * 3600.0


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from `now`: `Retry-After` is delay-seconds ("120") or an HTTP date
    ("Wed, 21 Oct 2026 07:28:00 GMT"). None when absent or unreadable; a date in the past
    is 0."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return min(float(text), _MAX_RETRY_AFTER_SECS)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC as well, by RFC 5322
        when = when.replace(tzinfo=UTC)
    secs = (when - now).total_seconds()
    if not math.isfinite(secs):
        return None
    return min(max(secs, 0.0), _MAX_RETRY_AFTER_SECS)


def answer_error(
    status: int, retry_after: str | None, now: datetime, where: str
) -> SinkError | None:
    """None for a 2xx answer, else the SinkError that says whether a retry can help.
    `where` names the receiver without secrets (scheme and host)."""
    if 200 <= status < 300:
        return None
    said = f"{where} answered HTTP {status}"
    if 300 <= status < 400:
        return SinkError(
            f"{said}, a redirect: not followed; configure the URL it points to",
            retryable=False,
        )
    if status == 410:
        return SinkGone(f"{said} (Gone): the endpoint no longer exists")
    wait = parse_retry_after(retry_after, now) if status in RETRY_AFTER_STATUSES else None
    if 400 <= status < 500 and status not in RETRYABLE_4XX:
        return SinkError(f"{said}: the receiver refused the message", retryable=False)
    return SinkError(said, retryable=True, retry_after_secs=wait)
