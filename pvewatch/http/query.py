"""The query string of `GET /api/v1/events` (and of the status page's filters) read into
an `EventQuery`, or a `BadQuery` saying which parameter is wrong and why (a 400). Pure.

    since, until  RFC 3339 (`2026-12-04T10:00:00Z`; no zone: UTC) or a duration back from
                  now (`30m`, `2h`, `7d`); since inclusive, until exclusive
    type          event type glob (`guest.*`), case-sensitive
    cluster, resource, severity (info, warning, critical)
    limit         1..1000 (default 100)
    cursor        the `next` of the previous page

An empty value is no filter (an HTML form sends its empty fields).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta

from pvewatch.model import Severity
from pvewatch.store.base import EventQuery

EVENT_PARAMS = ("since", "until", "type", "cluster", "severity", "resource", "limit", "cursor")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_VALUE_CHARS = 200
_AGO = re.compile(r"(\d{1,6})([smhd])")
_UNIT_SECS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class BadQuery(ValueError):
    """A parameter the API cannot take; the message names it and says why."""


def event_query(
    params: Mapping[str, str],
    now: datetime,
    *,
    allowed: Collection[str] = EVENT_PARAMS,
    default_limit: int = DEFAULT_LIMIT,
) -> EventQuery:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise BadQuery(f"unknown parameter {unknown[0]!r}; use {', '.join(allowed)}")
    given = {k: v.strip() for k, v in params.items() if v.strip()}
    for name, value in given.items():
        if len(value) > MAX_VALUE_CHARS:
            raise BadQuery(f"{name}: longer than {MAX_VALUE_CHARS} characters")
    severity = given.get("severity")
    if severity is not None and severity not in Severity.__members__.values():
        raise BadQuery(f"severity: {severity!r} is none of info, warning, critical")
    since, until = (_time(n, given.get(n), now) for n in ("since", "until"))
    if since is not None and until is not None and since >= until:
        raise BadQuery("since: must be before until")
    return EventQuery(
        since=since,
        until=until,
        type_pattern=given.get("type"),
        cluster=given.get("cluster"),
        severity=severity,
        resource=given.get("resource"),
        before=_number("cursor", given.get("cursor"), 1, 2**62),
        limit=_number("limit", given.get("limit"), 1, MAX_LIMIT) or default_limit,
    )


def parse_ago(value: str) -> timedelta | None:
    """`90s`, `30m`, `2h`, `7d` → the timedelta; None when it is not a duration."""
    m = _AGO.fullmatch(value)
    return None if m is None else timedelta(seconds=int(m[1]) * _UNIT_SECS[m[2]])


def _time(name: str, value: str | None, now: datetime) -> datetime | None:
    if value is None:
        return None
    ago = parse_ago(value)
    if ago is not None:
        return now - ago
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadQuery(
            f"{name}: {value!r} is neither an RFC 3339 time (2026-12-04T10:00:00Z) "
            "nor a duration back from now (30m, 2h, 7d)"
        ) from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _number(name: str, value: str | None, low: int, high: int) -> int | None:
    if value is None:
        return None
    if not value.isdecimal() or not low <= int(value) <= high:
        raise BadQuery(f"{name}: expected a whole number from {low} to {high}, got {value!r}")
    return int(value)
