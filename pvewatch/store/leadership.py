"""Which replica polls which cluster: the decisions, pure (no database, no clock).

With the SQLite store there is one replica and it leads every cluster (`SoleLeader`).
With PostgreSQL, replicas share the clusters through advisory locks held on a dedicated
session per replica (pvewatch.store.pg_leader does that I/O); a replica polls a cluster,
and delivers its outbox rows, only while it holds the cluster's lock. Every few seconds
each replica renews its heartbeat and looks at the locks; `plan` says what to release and
what to try to take:

- a replica takes at most ceil(clusters / live replicas) clusters, so they spread, and
  releases the extra ones when another replica joins;
- a cluster that nobody holds on two looks in a row is taken whatever the share, so a
  dead replica's clusters never wait for the heartbeats to notice it is gone.

Events that belong to no cluster (`sink.disabled`) go with the first cluster by name.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

# A cluster nobody held on this many looks in a row is taken whatever the share.
ORPHAN_LOOKS = 2


def lock_key(name: str, purpose: str = "leader") -> int:
    """A stable signed 64-bit advisory lock key for a cluster (the same in every replica
    and every release): `purpose` "leader" is held by the leading replica's session,
    "commit" for the length of one commit or load transaction."""
    digest = hashlib.sha256(f"pvewatch:{purpose}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def share(clusters: int, live_replicas: int) -> int:
    """How many clusters one replica may lead."""
    return math.ceil(clusters / max(live_replicas, 1))


@dataclass(frozen=True, slots=True)
class Plan:
    release: tuple[str, ...]  # ours, beyond our share
    take: tuple[str, ...]  # nobody's: try them in this order


def plan(
    clusters: Iterable[str],
    *,
    mine: Collection[str],
    others: Collection[str],
    live_replicas: int,
    free_looks: Mapping[str, int],
    busy: Collection[str] = (),
) -> Plan:
    """What to release and what to try to take. `mine`/`others`: the clusters whose lock
    this replica / another one holds; `free_looks`: for each free cluster, on how many
    looks in a row (this one included) it was free; `busy`: clusters with a poll in
    flight, which are neither released nor taken now (the next look will)."""
    names = sorted(set(clusters))
    target = share(len(names), live_replicas)
    held = [c for c in names if c in mine]
    release = tuple(c for c in held[target:][::-1] if c not in busy)
    free = [c for c in names if c not in mine and c not in others and c not in busy]
    room = max(target - len(held), 0)
    take = free[:room] + [c for c in free[room:] if free_looks.get(c, 0) >= ORPHAN_LOOKS]
    return Plan(release, tuple(take))


def delivered_clusters(led: Collection[str], configured: Iterable[str]) -> frozenset[str]:
    """The clusters whose outbox rows this replica delivers: the ones it leads, and ""
    (events of no cluster) when it leads the first configured cluster by name."""
    first = min(configured, default=None)
    extra = {""} if first is not None and first in led else set()
    return frozenset(led) | extra


class Leadership(Protocol):
    """What the daemon asks about leadership, and how it runs it."""

    def leads(self, cluster: str) -> bool:
        """True while this replica may poll `cluster` and deliver its events."""

    def delivered(self) -> frozenset[str] | None:
        """The clusters whose outbox rows this replica delivers; None: all of them."""

    async def look(self) -> None:
        """Take and give up clusters once, now (before the first polls)."""

    async def run(self) -> None:
        """Look again and again until cancelled."""

    async def stop(self) -> None:
        """Give every cluster up (at shutdown, after the last poll)."""


class SoleLeader:
    """One replica (the SQLite store): it leads every cluster, always."""

    def leads(self, cluster: str) -> bool:
        return True

    def delivered(self) -> frozenset[str] | None:
        return None

    async def look(self) -> None:
        return None

    async def run(self) -> None:
        return None

    async def stop(self) -> None:
        return None
