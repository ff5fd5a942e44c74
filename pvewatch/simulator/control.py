"""The control API under `/_sim/` (no auth; plain JSON in and out, no `data` envelope):

    GET    /_sim/resources            the current list, as /cluster/resources shows it
    PUT    /_sim/resources            serve this list (array or {"data": [...]}) as is
    DELETE /_sim/resources            back to the simulated cluster
    POST   /_sim/resources            create a guest {"id": "qemu/150", "node": ..., ...}
    PATCH  /_sim/resources/{id}       merge fields (`null` removes); node status offline
                                      or online follows the real timeline, unknown is a
                                      member whose pvestatd is silent; node `corosync`
                                      online|offline: membership alone
    DELETE /_sim/resources/{id}       remove one resource
    GET    /_sim/tasks                every task, as /cluster/tasks rows
    POST   /_sim/tasks                {"type","id","node","user"[,"status"][,"log"]} -> upid;
                                      {"upid","status"} finishes a running task
    GET|POST|DELETE /_sim/faults      see faults.py
    GET|DELETE /_sim/stats            API requests per path (the /_sim/ ones not counted)
    /_sim/acl, paths, ha, ceph, replication, qdevice, certificates, disks, zfs, backups,
    backup-jobs, vzdump, notify       see health/control.py and docs/simulator-health.md

Pool ids start with `/`: `/_sim/resources//pool/x` and `/_sim/resources/pool/x` both
name `/pool/x`. Call `handle()` with the cluster lock held.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from pvewatch.simulator.cluster import SimCluster
from pvewatch.simulator.edits import ControlError
from pvewatch.simulator.faults import FaultQueue, parse_fault
from pvewatch.simulator.health import control as health_control
from pvewatch.simulator.health.notifier import Notifier
from pvewatch.simulator.reply import Reply, Request, encode

PREFIX = "/_sim"


class RequestStats:
    """Counts API requests; shared by the request threads, hence its own lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: dict[str, int] = {}
        self._calls: dict[str, int] = {}

    def count(self, method: str, path: str) -> None:
        with self._lock:
            self._paths[path] = self._paths.get(path, 0) + 1
            call = f"{method} {path}"
            self._calls[call] = self._calls.get(call, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            total = sum(self._paths.values())
            return {"total": total, "paths": dict(self._paths), "requests": dict(self._calls)}

    def clear(self) -> None:
        with self._lock:
            self._paths.clear()
            self._calls.clear()


class Control:
    def __init__(
        self, cluster: SimCluster, faults: FaultQueue, stats: RequestStats, notifier: Notifier
    ) -> None:
        self._cluster = cluster
        self._faults = faults
        self._stats = stats
        self._notifier = notifier

    def handle(self, req: Request) -> Reply:
        try:
            body = json.loads(req.body) if req.body.strip() else None
        except (ValueError, RecursionError):  # RecursionError: nested too deeply
            return _error(400, f"{req.path}: the body is not JSON")
        try:
            return self._route(req, body)
        except ControlError as exc:
            return _error(400, str(exc))

    def _route(self, req: Request, body: Any) -> Reply:
        now = self._cluster.clock()
        method, path = req.method, req.path[len(PREFIX) :]
        if path == "/resources":
            return self._resources(method, body, now)
        if path.startswith("/resources/"):
            return self._one_resource(method, _resource_id(path), body, now)
        if path == "/tasks":
            return self._tasks(method, body, now)
        if path == "/faults":
            return self._fault_route(method, body)
        if path == "/stats" and method in ("GET", "DELETE"):
            if method == "DELETE":
                self._stats.clear()
            return _ok(self._stats.snapshot())
        health = health_control.handle(self._cluster, self._notifier, method, path, body)
        if health is not None:
            return health
        return _error(404, f"{method} {req.path}: no such control endpoint")

    def _resources(self, method: str, body: Any, now: float) -> Reply:
        if method == "GET":
            return _ok(self._cluster.resources(None, now))
        if method == "PUT":
            rows = body.get("data") if isinstance(body, dict) else body
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise ControlError("PUT /_sim/resources: expected a JSON array of objects")
            self._cluster.replace_resources(rows)
            return _ok({"count": len(rows)})
        if method == "DELETE":
            self._cluster.reset_resources()
            return _ok({})
        if method == "POST":
            return _ok({"id": self._cluster.create_guest(_object(body, "resources"), now)})
        return _error(405, f"{method} /_sim/resources: method not allowed")

    def _one_resource(self, method: str, rid: str, body: Any, now: float) -> Reply:
        if method == "PATCH":
            self._cluster.patch(rid, _object(body, rid), now)
            rows = [r for r in self._cluster.resources(None, now) if r.get("id") == rid]
            return _ok(rows[0] if rows else None)
        if method == "DELETE":
            self._cluster.delete(rid)
            return _ok({})
        return _error(405, f"{method} /_sim/resources/{rid}: method not allowed")

    def _tasks(self, method: str, body: Any, now: float) -> Reply:
        if method == "GET":
            return _ok(self._cluster.tasks.rows(self._cluster.tasks.nodes()))
        if method != "POST":
            return _error(405, f"{method} /_sim/tasks: method not allowed")
        spec = _object(body, "tasks")
        if "upid" in spec:
            task = self._cluster.finish_task(str(spec["upid"]), str(spec.get("status")), now)
            return _ok({"upid": task.upid})
        missing = [k for k in ("type", "node") if not isinstance(spec.get(k), str)]
        log = spec.get("log", [])
        if missing or not isinstance(log, list):
            raise ControlError("/_sim/tasks: needs string 'type' and 'node'; 'log' a list")
        user = str(spec.get("user", "root@pam"))
        task = self._cluster.start_task(
            spec["node"], spec["type"], str(spec.get("id", "")), user, now, [str(x) for x in log]
        )
        if spec.get("status") is not None:
            self._cluster.finish_task(task.upid, str(spec["status"]), now)
        return _ok({"upid": task.upid})

    def _fault_route(self, method: str, body: Any) -> Reply:
        if method == "POST":
            for spec in body if isinstance(body, list) else [body]:
                self._faults.add(parse_fault(spec))
        elif method == "DELETE":
            self._faults.clear()
        elif method != "GET":
            return _error(405, f"{method} /_sim/faults: method not allowed")
        return _ok(self._faults.pending())


def _resource_id(path: str) -> str:
    rid = path[len("/resources/") :]
    return "/" + rid if rid.startswith("pool/") else rid


def _object(body: Any, where: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ControlError(f"/_sim/{where}: expected a JSON object")
    return body


def _ok(payload: Any) -> Reply:
    return Reply(200, "OK", encode(payload))


def _error(status: int, message: str) -> Reply:
    return Reply(status, message.splitlines()[0], encode({"message": message}))
