"""Faults injected through `POST /_sim/faults`: the next N API answers fail in one way.

    {"kind": "status", "code": 500|595|401|..., "count": N}   that status instead
    {"kind": "delay", "seconds": S, "count": N}              answer S seconds late
    {"kind": "garbage", "count": N}                          200 with a broken body
    {"kind": "reset", "count": N}                            drop the connection unanswered
    {"kind": "body", "body": "...", "code": 200, "count": N} this raw body as the answer
                                                             (well-formed HTTP, any JSON or not)

An optional `"path": "/cluster/resources"` limits a fault to API paths containing it.
Faults queue up in the order given; each API request consumes one use of the first
fault that applies to it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from pvewatch.simulator.edits import ControlError

KINDS = ("status", "delay", "garbage", "reset", "body")
MAX_FAULT_BODY_CHARS = 16 * 1024**2
# The reason phrases PVE puts in the status line for these (FACTS.md §7.2).
REASONS = {
    401: "Authentication failed!",
    403: "Permission check failed (/, Sys.Audit)",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    595: "No route to host",
    596: "Connection timed out",
    597: "Connection reset by peer",
    598: "Request cancelled",
    599: "Unexpected error",
}


@dataclass(slots=True)
class Fault:
    kind: str
    count: int
    code: int = 500
    seconds: float = 0.0
    path: str = ""
    body: str = ""
    used: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "count": self.count - self.used,
            "code": self.code,
            "seconds": self.seconds,
            "path": self.path,
            "body": self.body,
        }


def parse_fault(spec: Any) -> Fault:
    if not isinstance(spec, dict) or spec.get("kind") not in KINDS:
        raise ControlError(f"/_sim/faults: 'kind' must be one of {', '.join(KINDS)}")
    count, seconds, body = spec.get("count", 1), spec.get("seconds", 0), spec.get("body", "")
    code = spec.get("code", 200 if spec["kind"] == "body" else 500)
    if not isinstance(count, int) or count < 1:
        raise ControlError("/_sim/faults: 'count' must be an integer >= 1")
    if not isinstance(code, int) or not 100 <= code <= 599:
        raise ControlError("/_sim/faults: 'code' must be an HTTP status 100..599")
    if not isinstance(seconds, int | float) or not 0 <= seconds <= 3600:
        raise ControlError("/_sim/faults: 'seconds' must be a number 0..3600")
    if not isinstance(body, str) or len(body) > MAX_FAULT_BODY_CHARS:
        raise ControlError("/_sim/faults: 'body' must be a string of at most 16 Mi characters")
    return Fault(spec["kind"], count, code, float(seconds), str(spec.get("path", "")), body)


class FaultQueue:
    """Shared by the request threads, hence its own lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_dict() for f in self._faults]

    def take(self, path: str) -> tuple[Fault, int] | None:
        """The fault for this request and which use of it (0-based), consuming one."""
        with self._lock:
            for fault in self._faults:
                if fault.path in path:
                    use = fault.used
                    fault.used += 1
                    if fault.used >= fault.count:
                        self._faults.remove(fault)
                    return fault, use
        return None
