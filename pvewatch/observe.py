"""What the pipeline tells whoever watches it (the metrics module, tests).

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
