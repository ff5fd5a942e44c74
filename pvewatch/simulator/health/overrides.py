"""Exact answers for tests: `PUT /_sim/paths` with `{"path": "/cluster/ceph/status",
"data": <value>}` serves `{"data": <value>}` for GET on that path (any path, per-node ones
too, with or without `/api2/json`; the query is ignored) until `DELETE /_sim/paths` with
`{"path": ...}` (no body: all of them). `{"path": ..., "status": 501, "message": "..."}`
serves an error the way PVE shapes it: the message's first line as the reason phrase and
`{"data": null, "message": ...}` (plus `"errors"` when given); 401 and 595-599 have only
the reason phrase, as PVE's auth and proxy errors. An override wins over everything the
simulator would answer, after authentication.
"""

from __future__ import annotations

from typing import Any

from pvewatch.simulator.edits import ControlError
from pvewatch.simulator.health import fields
from pvewatch.simulator.reply import Reply, bare, handler_error, ok

API_PREFIX = "/api2/json"


class PathOverrides:
    def __init__(self) -> None:
        self._answers: dict[str, dict[str, Any]] = {}

    def put(self, body: Any) -> str:
        where = "PUT /_sim/paths"
        spec = fields.body_object(body, where, ("path", "data", "status", "message", "errors"))
        path = _path(spec.get("path"), where)
        if ("data" in spec) == ("status" in spec):
            raise ControlError(f"{where}: give either 'data' or 'status' (+ 'message')")
        if "status" in spec:
            status = spec["status"]
            if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
                raise ControlError(f"{where}: 'status' must be an HTTP error status 400..599")
            fields.text(spec.get("message"), where, "message")
            errors = spec.get("errors")
            if errors is not None and not (
                isinstance(errors, dict) and all(isinstance(v, str) for v in errors.values())
            ):
                raise ControlError(f"{where}: 'errors' must be an object of strings")
        self._answers[path] = {k: v for k, v in spec.items() if k != "path"}
        return path

    def delete(self, body: Any) -> list[str]:
        if body is None:
            removed = sorted(self._answers)
            self._answers.clear()
            return removed
        spec = fields.body_object(body, "DELETE /_sim/paths", ("path",))
        path = _path(spec.get("path"), "DELETE /_sim/paths")
        if self._answers.pop(path, None) is None:
            raise ControlError(f"DELETE /_sim/paths: no override for {path}")
        return [path]

    def listing(self) -> dict[str, dict[str, Any]]:
        return dict(sorted(self._answers.items()))

    def answer(self, method: str, rel: str) -> Reply | None:
        """The override for this API request (`rel` without /api2/json), if any."""
        spec = self._answers.get(rel.rstrip("/") or "/") if method == "GET" else None
        if spec is None:
            return None
        if "data" in spec:
            return ok(spec["data"])
        status, message = spec["status"], spec["message"]
        if status == 401 or status >= 595:
            return bare(status, message.splitlines()[0])
        return handler_error(status, message, spec.get("errors"))


def _path(value: Any, where: str) -> str:
    path = fields.text(value, where, "path")
    path = path.removeprefix(API_PREFIX)
    if not path.startswith("/") or "?" in path or path.startswith("/_sim"):
        raise ControlError(f"{where}: 'path' is an API path such as /cluster/ceph/status")
    return path.rstrip("/") or "/"
