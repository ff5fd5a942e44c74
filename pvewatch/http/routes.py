"""What the listener answers, as a table of routes (no HTTP library here).

A `Route` says its path (`/metrics`, or with `{name}` segments: `/notify/{name}`), its
methods, who may ask (`auth`: None is the listener's basic auth; `auth_of`: an Auth per
`{name}`, a token per cluster for the notification ingest) and how large a body it
reads (`max_body_bytes`; 0 reads none). The listener decides auth from the head alone,
then reads at most that many bytes within the request deadline, then calls `answer`.
An answer that costs CPU (`blocking`) runs on the listener's worker thread, so probes
stay quick while a big scrape is rendered.

`standard_routes` are `/metrics`, `/healthz` and `/readyz`; the notification ingest and
the read API add theirs to the same table.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from pvewatch.http.auth import Auth
from pvewatch.observability.metrics import Metrics
from pvewatch.observability.probes import Heartbeat, Probe, Readiness, liveness

GET_HEAD = frozenset({"GET", "HEAD"})
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Asked:
    method: str
    path: str
    params: Mapping[str, str]  # the `{name}` segments of the route's path
    headers: Mapping[str, str]  # case-insensitive
    body: bytes = b""
    # The query string (a name given twice: its first value).
    query: Mapping[str, str] = field(default_factory=lambda: _NO_HEADERS)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=lambda: _NO_HEADERS)


@dataclass(frozen=True, slots=True)
class Route:
    path: str
    answer: Callable[[Asked], Answer]
    methods: frozenset[str] = GET_HEAD
    auth: Auth | None = None  # None: the listener's basic auth
    # The Auth for the `{name}` segments asked (a token per name), instead of `auth`.
    auth_of: Callable[[Mapping[str, str]], Auth] | None = None
    max_body_bytes: int = 0
    blocking: bool = False

    def match(self, path: str) -> dict[str, str] | None:
        """The `{name}` segments when `path` is this route's, else None."""
        mine, theirs = self.path.split("/"), path.split("/")
        if len(mine) != len(theirs):
            return None
        params: dict[str, str] = {}
        for pattern, segment in zip(mine, theirs, strict=True):
            if pattern.startswith("{") and pattern.endswith("}"):
                if not segment:
                    return None
                params[pattern[1:-1]] = segment
            elif pattern != segment:
                return None
        return params


def find(routes: Sequence[Route], path: str) -> tuple[Route, dict[str, str]] | None:
    for route in routes:
        params = route.match(path)
        if params is not None:
            return route, params
    return None


def not_found(routes: Sequence[Route]) -> Answer:
    paths = ", ".join(r.path for r in routes)
    return Answer(404, f"not found: try {paths}\n".encode())


def standard_routes(
    metrics: Metrics, readiness: Readiness, heartbeat: Heartbeat, stale_after_secs: float
) -> tuple[Route, ...]:
    def scrape(asked: Asked) -> Answer:
        body, content_type = metrics.render(asked.headers.get("Accept"))
        return Answer(200, body, content_type)

    def healthz(asked: Asked) -> Answer:
        return _probe(liveness(heartbeat.age(), stale_after_secs))

    def readyz(asked: Asked) -> Answer:
        return _probe(readiness.probe())

    return (
        Route("/metrics", scrape, blocking=True),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
    )


def _probe(probe: Probe) -> Answer:
    body = json.dumps(probe.to_dict(), indent=1).encode() + b"\n"
    return Answer(200 if probe.ok else 503, body, "application/json")
