"""`POST /notify/{name}`: PVE's and PBS's own notifications, received on the listener.

`{name}` is a cluster or a backup server with `notifications:` in the config; PVE's
webhook target sends `Authorization: Bearer <token>` (the listener's basic auth does not
apply here: PVE cannot send it). The answers:

- 202 once the event and its outbox rows are committed (PVE sends each notification once
  and never retries, so nothing is acknowledged that a crash could lose), with the
  event's id, type and, for a second sighting, the event it duplicates;
- 401 for a missing or wrong token, and the same for a name nobody configured (the
  comparison costs the same), decided before the body is read;
- 413 above `MAX_BODY_BYTES` (the listener), 415 for a content type other than JSON,
  400 with a one-line reason for a body that is not a notification;
- 503 when the store cannot commit, or no runtime came within `RUNTIME_WAIT_SECS` (a
  reload in progress waits for the next one; the tokens of the last one stay valid). A
  runtime that stops first lets the notifications it is recording commit (`detach`).

The body is never logged, nor quoted in an answer: it may carry anything, a secret too.

`Inbox` is what the listener holds across reloads; each runtime `attach`es what it
records to (`Target`) and detaches when it stops.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from pvewatch.config.types import Config
from pvewatch.errors import StoreError
from pvewatch.http.auth import Auth, BearerAuth
from pvewatch.http.routes import Answer, Asked, Route
from pvewatch.model import Event, Snapshot
from pvewatch.observability.metrics import Metrics
from pvewatch.secret import Secret
from pvewatch.store.base import Store
from pvewatch.watch import suppress
from pvewatch.watch.notifications import NoticeError, Source, notice_event, read_notice

MAX_BODY_BYTES = 1024 * 1024
# How long a notification that arrives during a reload waits for the next runtime (PVE
# does not retry: a short wait beats a 503).
RUNTIME_WAIT_SECS = 5.0
# How long a runtime that stops waits for the notifications it is recording (their commit
# is a few milliseconds; the bound keeps a hung store from holding a stop).
DRAIN_SECS = 10.0
# The types a metric label takes as they are; others count as "other".
KNOWN_TYPES = frozenset(
    {"vzdump", "replication", "fencing", "package-updates", "system-mail", "acme"}
    | {"gc", "prune", "sync", "verify", "tape-backup", "tape-load"}
)
_JSON = ("application/json", "text/json")


@dataclass(frozen=True, slots=True)
class Target:
    """What one runtime records notifications with."""

    config: Config
    store: Store
    route: Callable[[Event], Sequence[str]]  # the sinks an event goes to
    metrics: Metrics
    clock: Callable[[], datetime]
    committed: Callable[[list[Event]], None]  # thread-safe: wakes the deliverers

    def sources(self) -> dict[str, tuple[Source, Secret]]:
        found: dict[str, tuple[Source, Secret]] = {
            c.name: ("pve", c.notifications.token)
            for c in self.config.clusters
            if c.notifications is not None
        }
        for server in self.config.backup_servers:
            found[server.name] = ("pbs", server.notifications.token)
        return found


class Inbox:
    """The ingest's door on the listener: the route, and the runtime behind it."""

    def __init__(
        self, logger: logging.Logger | None = None, wait_secs: float = RUNTIME_WAIT_SECS
    ) -> None:
        self._lock = threading.Condition()
        self._target: Target | None = None
        # The names and tokens of the last runtime: kept while a reload builds the next.
        self._sources: dict[str, tuple[Source, Secret]] = {}
        self._wait_secs = wait_secs
        self._busy: dict[int, int] = {}  # per target (its id): the requests recording now
        self._log = logger or logging.getLogger("pvewatch.notify")

    def attach(self, target: Target) -> None:
        with self._lock:
            self._target, self._sources = target, target.sources()
            self._lock.notify_all()

    def detach(self, target: Target) -> None:
        """No new notification goes to `target`; the ones it is recording end before this
        returns (its runtime closes the store next)."""
        with self._lock:
            if self._target is target:
                self._target = None
            self._lock.wait_for(lambda: id(target) not in self._busy, timeout=DRAIN_SECS)

    def route(self) -> Route:
        return Route(
            "/notify/{name}",
            self.answer,
            methods=frozenset({"POST"}),
            auth_of=self.auth_of,
            max_body_bytes=MAX_BODY_BYTES,
            blocking=True,
        )

    def auth_of(self, params: Mapping[str, str]) -> Auth:
        with self._lock:
            found, target = self._sources.get(params.get("name", "")), self._target
        source = found[0] if found else "unknown"

        def refused() -> None:
            if target is not None:
                target.metrics.notification_received(source, "none", "unauthorized")

        return BearerAuth(found[1] if found else None, refused)

    def answer(self, asked: Asked) -> Answer:
        name = asked.params.get("name", "")
        with self._lock:  # a reload in progress: its next runtime, in a moment
            self._lock.wait_for(lambda: self._target is not None, timeout=self._wait_secs)
            target, found = self._target, self._sources.get(name)
            if target is not None and found is not None:
                self._busy[id(target)] = self._busy.get(id(target), 0) + 1
        if target is None or found is None:  # stopping, or a reload took the name away
            return _text(503, "not receiving notifications right now; try again")
        try:
            return self._record(target, found[0], name, asked)
        finally:
            with self._lock:
                left = self._busy.pop(id(target)) - 1
                if left:
                    self._busy[id(target)] = left
                self._lock.notify_all()

    def _record(self, target: Target, source: Source, name: str, asked: Asked) -> Answer:
        def count(type_: str, result: str) -> None:
            label = type_ if type_ in KNOWN_TYPES else ("none" if not type_ else "other")
            target.metrics.notification_received(source, label, result)

        media = asked.headers.get("Content-Type", "").partition(";")[0].strip().lower()
        if media not in _JSON:
            count("", "unsupported_media_type")
            return _text(415, "expected Content-Type: application/json")
        try:
            notice = read_notice(asked.body)
        except NoticeError as e:
            count("", "bad_request")
            return _text(400, f"not a notification: {e}")
        now = target.clock()
        event = notice_event(notice, source=source, name=name, now=now)
        try:
            silences = target.store.silences(now)
            nowhere = Snapshot(name, {}, now)
            (event,) = suppress.apply(
                [event], nowhere, target.config.rules.maintenance, silences, now
            )
            recorded = target.store.record_events([event], target.route)
        except StoreError as e:
            self._log.error("notify/%s: cannot record a %s notification: %s", name, source, e)
            count(notice.type, "store_failed")
            return _text(503, "cannot store the notification now")
        target.committed(recorded)
        target.metrics.events_recorded(recorded)
        event = recorded[0] if recorded else event
        result = {"duplicate": "duplicate", "silenced": "silenced"}.get(event.suppressed or "")
        count(notice.type, result or "accepted")
        self._log.info("notify/%s: %s %s (%s)", name, event.type, event.id, result or "accepted")
        body = {"id": event.id, "type": event.type, "suppressed": event.suppressed}
        if "duplicate_of" in event.details:
            body["duplicate_of"] = str(event.details["duplicate_of"])
        return Answer(202, json.dumps(body).encode() + b"\n", "application/json")


def _text(status: int, message: str) -> Answer:
    return Answer(status, message.encode() + b"\n")
