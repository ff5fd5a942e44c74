"""The cyclic garbage collector in a daemon that holds a big snapshot for hours.

Every object the watchers keep (10,000 guests' `Resource`s, the rule state, the modules)
sits in the collector's oldest generation, and each full collection walks all of it:
about 35 ms at 10,000 guests, a pause that lands inside whichever poll triggered it and
was the tail of answer → webhook (bench/RESULTS.md). After each cluster's first snapshot,
and then once an hour, `HeapFreezer` collects once and freezes what is left
(`gc.freeze`): those objects are no longer walked, while everything made afterwards is
collected as before. Objects freed by their reference count are freed frozen or not; the
hourly round unfreezes first, so a cycle that became garbage among the frozen objects
waits at most an hour.

Only the daemon's processes use it (`pvewatch run`, `once` and the benchmarks that stand
for it): the collector's state is the whole process's.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence

from pvewatch.model import Event, Snapshot

REFREEZE_SECS = 3600.0


class HeapFreezer:
    """An observer of polls (`observability.observe.Observer`) that freezes the heap."""

    def __init__(
        self, *, every_secs: float = REFREEZE_SECS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._every = every_secs
        self._clock = clock
        self._seen: set[str] = set()  # clusters whose first snapshot was frozen
        self._last: float | None = None
        self.rounds = 0

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
        if not ok:
            return
        now = self._clock()
        if cluster not in self._seen or self._last is None or now - self._last >= self._every:
            self._seen.add(cluster)
            self._last = now
            self.freeze()

    def freeze(self) -> None:
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self.rounds += 1

    def delivery_finished(self, sink: str, *, outcome: str, duration_secs: float) -> None:
        pass

    def sink_enabled(self, sink: str, enabled: bool) -> None:
        pass
