"""The read API: `GET /api/v1/status`, `/events`, `/deliveries`, `/silences` (docs/api.md),
and its only writes: a silence made from an event, and a silence expired.

Writes are refused (403) unless the listener asks for a password (http.basic_auth_users):
without one, anyone who reaches the port could silence alerts. A browser sends a cached
password along with any request, even one a hostile page makes it send, so a write also
needs the header `X-Pvewatch-Write: 1`: a page of another origin cannot add a header
without a CORS preflight, which the listener never grants (and an `Origin` or
`Sec-Fetch-Site` that says cross-site is refused too).
"""

from __future__ import annotations

import glob
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from pvewatch.errors import StoreError
from pvewatch.http.auth import basic_user
from pvewatch.http.query import BadQuery, event_query, parse_ago
from pvewatch.http.routes import GET_HEAD, Answer, Asked, Route
from pvewatch.http.view import ReadView, Unavailable
from pvewatch.silence import Matcher
from pvewatch.store.base import EventQuery

JSON = "application/json"
WRITE_HEADER = "X-Pvewatch-Write"
DEFAULT_SILENCE = "2h"
MAX_SILENCE_SECS = 30 * 86400
MAX_BODY_BYTES = 4096


def api_routes(view: ReadView, logger: logging.Logger) -> tuple[Route, ...]:
    def guarded(read: Callable[[Asked], Answer]) -> Callable[[Asked], Answer]:
        return lambda asked: _guarded(read, asked, logger)

    def status(asked: Asked) -> Answer:
        return _json(200, view.status())

    def events(asked: Asked) -> Answer:
        try:
            query = event_query(asked.query, view.clock())
        except BadQuery as e:
            return _json(400, {"error": str(e)})
        return _json(200, view.events(query))

    def deliveries(asked: Asked) -> Answer:
        return _json(200, view.deliveries())

    def silences(asked: Asked) -> Answer:
        if asked.method in GET_HEAD:
            return _json(200, view.silences())
        return _write(view, asked) or _silence_event(view, asked)

    def expire(asked: Asked) -> Answer:
        refused = _write(view, asked)
        if refused is not None:
            return refused
        sid = asked.params["id"]
        if not view.source.store.remove_silence(sid):
            return _json(404, {"error": f"no silence {sid}"})
        logger.info("http: silence %s expired by %s", sid, basic_user(asked.headers))
        return _json(200, {"expired": sid})

    writes = frozenset({"POST"})
    return (
        Route("/api/v1/status", guarded(status), blocking=True),
        Route("/api/v1/events", guarded(events), blocking=True),
        Route("/api/v1/deliveries", guarded(deliveries), blocking=True),
        Route(
            "/api/v1/silences",
            guarded(silences),
            methods=GET_HEAD | writes,
            max_body_bytes=MAX_BODY_BYTES,
            blocking=True,
        ),
        Route(
            "/api/v1/silences/{id}/expire",
            guarded(expire),
            methods=writes,
            max_body_bytes=MAX_BODY_BYTES,
            blocking=True,
        ),
    )


def _guarded(read: Callable[[Asked], Answer], asked: Asked, logger: logging.Logger) -> Answer:
    """A store that cannot be read now is a 503 (its error in pvewatch's log only)."""
    try:
        return read(asked)
    except Unavailable as e:
        return _json(503, {"error": str(e)})
    except StoreError as e:
        logger.warning("http: %s %s: %s", asked.method, asked.path, e)
        return _json(503, {"error": "the state store cannot be read now (see pvewatch's log)"})


def _write(view: ReadView, asked: Asked) -> Answer | None:
    """Why this write is refused (403), or None when it may go ahead."""
    if not view.source.writable:
        reason = "writes need a password on the listener (http.basic_auth_users)"
        return _json(403, {"error": reason})
    if asked.headers.get(WRITE_HEADER) != "1":
        return _json(403, {"error": f"a write needs the header {WRITE_HEADER}: 1"})
    origin = asked.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != asked.headers.get("Host"):
        return _json(403, {"error": "a write from another origin is refused"})
    if asked.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return _json(403, {"error": "a write from another site is refused"})
    return None


def _silence_event(view: ReadView, asked: Asked) -> Answer:
    """`{"event": ID, "duration": "2h", "comment": "..."}`: silence the resource of that
    event, in its cluster, for the duration (at most 30 days)."""
    try:
        body = json.loads(asked.body or b"null")
    except ValueError:
        return _json(400, {"error": "the body is not JSON"})
    if not isinstance(body, dict) or not isinstance(body.get("event"), str):
        return _json(400, {"error": 'expected {"event": "<event id>", "duration": "2h"}'})
    duration = parse_ago(str(body.get("duration") or DEFAULT_SILENCE))
    if duration is None or not 0 < duration.total_seconds() <= MAX_SILENCE_SECS:
        return _json(400, {"error": "duration: expected 30m, 2h, 7d ... up to 30d"})
    comment = body.get("comment")
    if comment is not None and not isinstance(comment, str):
        return _json(400, {"error": "comment: expected a string"})
    store = view.source.store
    found = store.browse(EventQuery(event_id=body["event"], limit=1))
    if not found:
        return _json(404, {"error": f"no event {body['event']!r}"})
    event = found[0][1]
    if event.resource is None:
        return _json(400, {"error": "that event is about no resource (a whole cluster)"})
    if "," in event.cluster + event.resource.id:
        return _json(400, {"error": "a name with a comma cannot be matched by a silence"})
    now = view.clock()
    user = basic_user(asked.headers)
    made = store.add_silence(
        (
            Matcher("cluster", glob.escape(event.cluster)),
            Matcher("resource", glob.escape(event.resource.id)),
        ),
        starts_at=now,
        ends_at=now + duration,
        comment=(comment or f"from the status page, event {event.id}")[:500],
        created_by=user,
    )
    return _json(201, {"silence": made.to_dict(now)})


def _json(status: int, body: dict[str, Any]) -> Answer:
    return Answer(status, json.dumps(body, indent=1).encode() + b"\n", JSON)
