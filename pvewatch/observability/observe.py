"""What the pipeline tells whoever watches it (the metrics, readiness, tests).

Components take an `Observer` explicitly; `NullObserver` is the default. Observers must be
quick and must not raise: they run inside the poll and the delivery loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pvewatch.model import Event, Snapshot


class Observer(Protocol):
    def poll_finished(
        self,
        cluster: str,
        *,
        ok: bool,
        duration_secs: float,
        snapshot: Snapshot | None,
        events: Sequence[Event],
        error_kind: str | None,
    ) -> None:
        """After each poll. `snapshot` is the committed one (None when the poll failed)."""

    def delivery_finished(self, sink: str, *, outcome: str, duration_secs: float) -> None:
        """After each delivery attempt; outcome is `delivered`, `retry` or `dead`."""

    def sink_enabled(self, sink: str, enabled: bool) -> None:
        """At start for every sink, and when a sink is disabled (e.g. its webhook said 410)."""


class Observers:
    """Tells every observer it is given, in order (the metrics and readiness)."""

    def __init__(self, *observers: Observer) -> None:
        self._observers = observers

    def poll_finished(
        self,
        cluster: str,
        *,
        ok: bool,
        duration_secs: float,
        snapshot: Snapshot | None,
        events: Sequence[Event],
        error_kind: str | None,
    ) -> None:
        for o in self._observers:
            o.poll_finished(
                cluster,
                ok=ok,
                duration_secs=duration_secs,
                snapshot=snapshot,
                events=events,
                error_kind=error_kind,
            )

    def delivery_finished(self, sink: str, *, outcome: str, duration_secs: float) -> None:
        for o in self._observers:
            o.delivery_finished(sink, outcome=outcome, duration_secs=duration_secs)

    def sink_enabled(self, sink: str, enabled: bool) -> None:
        for o in self._observers:
            o.sink_enabled(sink, enabled)


class NullObserver:
    def poll_finished(
        self,
        cluster: str,
        *,
        ok: bool,
        duration_secs: float,
        snapshot: Snapshot | None,
        events: Sequence[Event],
        error_kind: str | None,
    ) -> None:
        return None

    def delivery_finished(self, sink: str, *, outcome: str, duration_secs: float) -> None:
        return None

    def sink_enabled(self, sink: str, enabled: bool) -> None:
        return None
