"""The PVE API endpoints of the simulator (`/api2/json/...`), with PVE's parameter checks,
auth rules and error shapes (FACTS.md §1-7). No sockets: a `Request` in, a `Reply` out.
Call `handle()` with the cluster lock held.
"""

from __future__ import annotations

from collections.abc import Hashable

from pvewatch.simulator import SimOptions
from pvewatch.simulator.auth import Authenticator
from pvewatch.simulator.cluster import TYPE_FILTERS, SimCluster
from pvewatch.simulator.health import routes as health_routes
from pvewatch.simulator.reply import (
    GZIP_MIN_BYTES,
    Reply,
    Request,
    bad_params,
    bare,
    compress,
    encode,
    handler_error,
    last_param,
    ok,
    unknown_params,
    unreachable,
)
from pvewatch.simulator.tasks import log_page, parse_upid

PREFIX = "/api2/json"


class Api:
    def __init__(self, cluster: SimCluster, auth: Authenticator, options: SimOptions) -> None:
        self._cluster = cluster
        self._auth = auth
        self._options = options
        # /cluster/resources bodies by type filter, valid while the render key holds.
        self._cache_key: Hashable = None
        self._cache: dict[str | None, tuple[bytes, bytes | None]] = {}

    def handle(self, req: Request) -> Reply:
        if not req.path.startswith(PREFIX + "/"):
            return Reply(501, "no such uri", b"no such uri", content_type="text/plain")
        rel = req.path[len(PREFIX) :]
        if rel == "/access/ticket" and req.method == "POST":
            return self._login(req)
        auth = self._auth.authenticate(req.method, req.cookie, req.authorization, req.csrf)
        if auth.user is None:
            return bare(401, auth.reason, self._options.auth_fail_delay_secs)
        override = self._cluster.health.overrides.answer(req.method, rel)
        if override is not None:
            return override
        return self._route(req, rel, auth.user)

    def _route(self, req: Request, rel: str, user: str) -> Reply:
        now = self._cluster.clock()
        if req.method == "GET":
            if rel == "/version":
                return self._checked(req, set()) or ok(self._cluster.version_info())
            if rel == "/cluster/resources":
                return self._resources(req, now)
            if rel == "/cluster/status":
                return self._checked(req, set()) or ok(self._cluster.cluster_status())
            if rel == "/cluster/tasks":
                return self._checked(req, set()) or ok(self._cluster.task_rows())
            parts = rel.split("/")
            if len(parts) == 6 and parts[1] == "nodes" and parts[3] == "tasks":
                return self._task(req, parts[2], parts[4], parts[5])
        health = health_routes.answer(self._cluster, user, req, rel, now)
        if health is not None:
            return health
        return handler_error(501, f"Method '{req.method} {rel}' not implemented")

    def _resources(self, req: Request, now: float) -> Reply:
        bad = self._checked(req, {"type"})
        if bad:
            return bad
        kind = last_param(req.query, "type")
        if kind is not None and kind not in TYPE_FILTERS:
            enum = ", ".join(TYPE_FILTERS)
            errors = {"type": f"value '{kind}' does not have a value in the enumeration '{enum}'"}
            return bad_params(errors)
        key = self._cluster.render_key(now)
        if key != self._cache_key:
            self._cache_key, self._cache = key, {}
        body, gzipped = self._cache.get(kind) or (
            encode({"data": self._cluster.resources(kind, now)}),
            None,
        )
        if req.accept_gzip and gzipped is None and len(body) > GZIP_MIN_BYTES:
            gzipped = compress(body)
        self._cache[kind] = (body, gzipped)
        return Reply(200, "OK", body, gzipped if req.accept_gzip else None)

    def _task(self, req: Request, node: str, upid: str, what: str) -> Reply:
        allowed = {"start", "limit", "download"} if what == "log" else set()
        if what not in ("status", "log"):
            return handler_error(501, f"Method 'GET {req.path[len(PREFIX) :]}' not implemented")
        gone = unreachable(node, self._cluster.node_online(node))
        if gone:
            return gone
        bad = self._checked(req, allowed)
        if bad:
            return bad
        if parse_upid(upid) is None:
            return bad_params({"upid": "unable to parse worker upid"})
        task = self._cluster.tasks.get(upid)
        if task is None or task.node != node:
            return bad_params({"upid": "no such task"})
        if what == "status":
            return ok(task.status_row())
        start, limit = _int_param(req, "start", 0), _int_param(req, "limit", 50)
        if isinstance(start, Reply):
            return start
        if isinstance(limit, Reply):
            return limit
        lines, total = log_page(task.log, start, limit)
        return ok(lines, total=total) if total else ok(lines)

    def _login(self, req: Request) -> Reply:
        data = self._auth.login({**{k: v[-1] for k, v in req.query.items()}, **req.params()})
        if data is None:
            reply = handler_error(401, "authentication failure\n")
            reply.delay_secs = self._options.auth_fail_delay_secs
            return reply
        if self._options.nodes < 2:
            data.pop("clustername", None)
        return ok(data)

    def _checked(self, req: Request, allowed: set[str]) -> Reply | None:
        return unknown_params(req.query, allowed)


def _int_param(req: Request, name: str, default: int) -> int | Reply:
    raw = last_param(req.query, name)
    if raw is None:
        return default
    if not raw.isdigit():
        errors = {name: f"type check ('integer') failed - got '{raw}'"}
        return bad_params(errors)
    return int(raw)
