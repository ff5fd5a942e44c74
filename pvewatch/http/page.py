"""The status page, `GET /`: what pvewatch sees and did, for a person, server-rendered.

One HTML answer with its CSS and a little JavaScript inline (nothing fetched from
elsewhere: it works on an air-gapped host). Jinja2 escapes every value it writes
(`autoescape`), and a Content-Security-Policy lets only this page's own script (by
nonce) run, so a guest named `<script>...` is text twice over.

The filters (cluster, type glob, severity) are a plain GET form. The live part (clusters,
events, queues, silences) is `GET /?part=live` with the same filters: the page's script
fetches it every `refresh` seconds (default 10) and swaps it in, keeping open events open.
Buttons to silence an event's resource for 2 h and to expire a silence are shown only when
writes are allowed (pvewatch.http.api says when).
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2

from pvewatch.errors import StoreError
from pvewatch.http.api import WRITE_HEADER, api_routes
from pvewatch.http.query import BadQuery, event_query
from pvewatch.http.routes import Answer, Asked, Route
from pvewatch.http.view import ReadView, Unavailable
from pvewatch.model import Severity

HTML = "text/html; charset=utf-8"
PAGE_PARAMS = ("cluster", "type", "severity", "cursor", "part", "refresh")
PAGE_EVENTS = 50
DEFAULT_REFRESH_SECS = 10
_TEMPLATES = Path(__file__).parent / "templates"


def read_routes(view: ReadView, logger: logging.Logger) -> tuple[Route, ...]:
    """The read API's routes and the status page's, for the listener's table."""
    return (*api_routes(view, logger), *page_routes(view, logger))


def page_routes(view: ReadView, logger: logging.Logger) -> tuple[Route, ...]:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    page, live = env.get_template("page.html.j2"), env.get_template("live.html.j2")

    def answer(asked: Asked) -> Answer:
        params = {k: v for k, v in asked.query.items() if k not in ("part", "refresh")}
        refresh = asked.query.get("refresh", "")
        try:
            unknown = sorted(set(asked.query) - set(PAGE_PARAMS))
            if unknown:
                raise BadQuery(f"unknown parameter {unknown[0]!r}; use {', '.join(PAGE_PARAMS)}")
            if refresh and not (refresh.isdecimal() and 1 <= int(refresh) <= 3600):
                raise BadQuery("refresh: expected seconds from 1 to 3600")
            query = event_query(params, view.clock(), default_limit=PAGE_EVENTS)
            shown = _shown(view, query)
        except BadQuery as e:
            return Answer(400, f"{e}\n".encode())
        except Unavailable as e:
            return Answer(503, f"{e}\n".encode())
        except StoreError as e:
            logger.warning("http: the status page: %s", e)
            return Answer(503, b"the state store cannot be read now (see pvewatch's log)\n")
        shown["filters"] = filters = {k: params.get(k, "") for k in ("cluster", "type", "severity")}
        if shown["next"]:
            shown["older"] = urlencode(
                {k: v for k, v in filters.items() if v} | {"cursor": shown["next"]}
            )
        if asked.query.get("part") == "live":
            return Answer(200, live.render(shown).encode(), HTML)
        nonce = secrets.token_urlsafe(16)
        shown |= {
            "nonce": nonce,
            "refresh": int(refresh or DEFAULT_REFRESH_SECS),
            "severities": [s.value for s in Severity],
            "write_header": WRITE_HEADER,
        }
        headers = {
            "Content-Security-Policy": (
                f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
                "connect-src 'self'; img-src 'self' data:; form-action 'self'; "
                "base-uri 'none'; frame-ancestors 'none'"
            ),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        }
        return Answer(200, page.render(shown).encode(), HTML, headers)

    return (Route("/", answer, blocking=True),)


def _shown(view: ReadView, query: Any) -> dict[str, Any]:
    """What both templates show: one read of each part."""
    events = view.events(query)
    states = events["deliveries"]
    return {
        "status": view.status(),
        "events": [(e, states.get(e["id"], [])) for e in events["events"]],
        "next": events["next"],
        "older": None,
        "queues": view.deliveries()["sinks"],
        "silences": view.silences(),
    }
