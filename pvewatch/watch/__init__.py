"""The pure core of the watch pipeline: rows → snapshot → events.

    normalize(cluster, rows, now)       one poll of /cluster/resources → Snapshot
    carry_forward(old, new)             a guest's "unknown" keeps its last known status
    diff(old, new, now, late=False)     two snapshots → events (the first one is the baseline)

No clock, no I/O: `now` is always an argument.
"""

from __future__ import annotations

from pvewatch.watch.diff import diff
from pvewatch.watch.normalize import COUNTER_FIELDS, carry_forward, normalize

__all__ = ["COUNTER_FIELDS", "carry_forward", "diff", "normalize"]
