"""Leadership of clusters through PostgreSQL advisory locks (decisions: pvewatch.store.leadership).

Each replica holds one dedicated session (autocommit) for as long as it runs. Every
`leader_check_secs` it looks: it renews its heartbeat in `replicas`, counts the live
replicas (seen recently, and their session still there), reads who holds which cluster
lock, then releases what is beyond its share and tries `pg_try_advisory_lock` on the
clusters nobody holds. A lock lives as long as the session that took it: when a replica
dies, is cut off or its backend is terminated, PostgreSQL releases its locks at once (or
after the keepalive timeouts of pvewatch.store.postgres.connect_args when the network
just goes silent), and another replica takes the clusters on its next look.

A replica that cannot reach the database stops leading at once: it cannot prove it still
holds the locks. It also stops when its last good look is older than the lease (3 looks
plus 2 s, less than the server's keepalive timeout), whatever a hung query says. The
store's commits check the lock in their own transaction (`session_pid`), so a replica
that lost a cluster cannot write a stale poll of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from pvewatch.config.types import PostgresConfig
from pvewatch.store.leadership import delivered_clusters, lock_key, plan
from pvewatch.store.postgres import connect_args

log = logging.getLogger("pvewatch.leader")

_HEARTBEAT = """
    INSERT INTO replicas (id, backend_pid, started_at, last_seen)
    VALUES (%s, pg_backend_pid(), now(), now())
    ON CONFLICT (id) DO UPDATE SET backend_pid = excluded.backend_pid, last_seen = now()"""
_LIVE = """
    SELECT count(*) FROM replicas AS r
    WHERE r.last_seen > now() - make_interval(secs => %s)
      AND EXISTS (SELECT 1 FROM pg_stat_activity AS a WHERE a.pid = r.backend_pid)"""
# bigint advisory locks of this database: the key is split into classid (high 32 bits)
# and objid (low 32 bits), objsubid 1.
_LOCKS = """
    SELECT pid, (classid::bigint << 32) | objid::bigint FROM pg_locks
    WHERE locktype = 'advisory' AND objsubid = 1 AND granted
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"""
_TOOK = """
    INSERT INTO leaders (cluster, replica, since) VALUES (%s, %s, now())
    ON CONFLICT (cluster) DO UPDATE SET replica = excluded.replica, since = now()"""


def default_replica_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def application_name(replica_id: str) -> str:
    """What this replica's connections are called on the server (pg_stat_activity)."""
    return f"pvewatch/{replica_id}"[:63]


@dataclass(frozen=True, slots=True)
class _Look:
    pid: int
    mine: frozenset[str]
    others: frozenset[str]
    live: int


class PgLeadership:
    """This replica's share of the clusters. `run()` until cancelled, `stop()` at the
    end; `leads`/`delivered` for the daemon, `session_pid` for the store's fencing."""

    def __init__(
        self,
        config: PostgresConfig,
        clusters: Sequence[str],
        *,
        replica_id: str,
        on_change: Callable[[str, bool], None] = lambda cluster, leading: None,
        on_database: Callable[[bool, str], None] = lambda ok, detail: None,
        busy: Callable[[str], bool] = lambda cluster: False,
        logger: logging.Logger = log,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.replica_id = replica_id
        self._where = config.where()
        self._args = connect_args(config, application_name(replica_id))
        self._clusters = tuple(sorted(set(clusters)))
        self._keys = {lock_key(c): c for c in self._clusters}
        self._check_secs = config.leader_check_secs
        self._lease_secs = 3 * config.leader_check_secs + 2.0
        self._on_change, self._on_database, self._busy = on_change, on_database, busy
        self._log = logger
        self._monotonic = monotonic
        self._io = threading.Lock()  # one statement on the session at a time
        self._session: psycopg.Connection[tuple[Any, ...]] | None = None
        # Read by other threads (the store's commits): replaced whole, never mutated.
        self._led: frozenset[str] = frozenset()
        self._pid: int | None = None
        self._last_ok: float | None = None
        self._free_looks: dict[str, int] = {}
        self._database_ok: bool | None = None
        self._discard = False  # the session failed: close it, use a new one

    # --- what the daemon and the store ask --------------------------------------------

    def leads(self, cluster: str) -> bool:
        return cluster in self._led and self._fresh()

    def delivered(self) -> frozenset[str] | None:
        return delivered_clusters(self._led, self._clusters) if self._fresh() else frozenset()

    def session_pid(self, cluster: str) -> int | None:
        return self._pid if self.leads(cluster) else None

    def led(self) -> frozenset[str]:
        return self._led if self._fresh() else frozenset()

    def _fresh(self) -> bool:
        last = self._last_ok
        return last is not None and self._monotonic() - last <= self._lease_secs

    # --- the loop ---------------------------------------------------------------------

    async def run(self) -> None:
        """Look every leader_check_secs until cancelled."""
        while True:
            await self.look()
            await asyncio.sleep(self._check_secs)

    async def look(self) -> None:
        """One look: heartbeat, share, release and take. Never raises for the database."""
        try:
            seen = await asyncio.wait_for(asyncio.to_thread(self._observe), self._lease_secs)
            decided = plan(
                self._clusters,
                mine=seen.mine,
                others=seen.others,
                live_replicas=seen.live,
                free_looks=self._count_free(seen),
                busy=[c for c in self._clusters if self._busy(c)],
            )
            for cluster in decided.release:
                self._set_led(self._led - {cluster}, "given to a replica with room")
            taken = await asyncio.to_thread(self._apply, decided.release, decided.take)
        except (psycopg.Error, OSError, TimeoutError) as e:
            self._lost(e)
            return
        self._pid, self._last_ok = seen.pid, self._monotonic()
        self._database(True, f"leadership session to {self._where} is up")
        led = (seen.mine - set(decided.release)) | taken
        self._set_led(frozenset(led), "its lock is gone")

    async def stop(self) -> None:
        """Give every cluster up now (others take them on their next look) and close."""
        for cluster in sorted(self._led):
            self._set_led(self._led - {cluster}, "stopping")
        await asyncio.to_thread(self._close)

    # --- on the session (in a thread) -------------------------------------------------

    def _observe(self) -> _Look:
        with self._io:
            session = self._connected()
            session.execute(_HEARTBEAT, (self.replica_id,))
            # Replicas killed without a goodbye: forgotten after a day.
            session.execute("DELETE FROM replicas WHERE last_seen < now() - interval '1 day'")
            ttl = max(10.0, 5 * self._check_secs)
            live = session.execute(_LIVE, (ttl,)).fetchone()
            pid = session.info.backend_pid
            mine: set[str] = set()
            others: set[str] = set()
            for holder, key in session.execute(_LOCKS).fetchall():
                cluster = self._keys.get(int(key))
                if cluster is not None:
                    (mine if holder == pid else others).add(cluster)
            return _Look(pid, frozenset(mine), frozenset(others), int(live[0]) if live else 1)

    def _apply(self, release: Sequence[str], take: Sequence[str]) -> frozenset[str]:
        with self._io:
            session = self._connected()
            for cluster in release:
                session.execute("SELECT pg_advisory_unlock(%s)", (lock_key(cluster),))
            taken = set()
            for cluster in take:
                row = session.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(cluster),))
                got = row.fetchone()
                if got and got[0]:
                    session.execute(_TOOK, (cluster, self.replica_id))
                    taken.add(cluster)
            return frozenset(taken)

    def _connected(self) -> psycopg.Connection[tuple[Any, ...]]:
        session = self._session
        if self._discard or session is None or session.closed or session.broken:
            self._discard = False
            if session is not None:
                session.close()
            self._session = None
            session = psycopg.connect(**self._args, autocommit=True)
            self._session = session
        return session

    def _close(self) -> None:
        """Leave `replicas` and close the session, which releases every lock."""
        with self._io:
            session, self._session = self._session, None
            if session is None:
                return
            if not session.broken:
                with contextlib.suppress(psycopg.Error):  # others stop counting it at once
                    session.execute("DELETE FROM replicas WHERE id = %s", (self.replica_id,))
            session.close()

    # --- state changes (on the event loop) --------------------------------------------

    def _count_free(self, seen: _Look) -> dict[str, int]:
        free = [c for c in self._clusters if c not in seen.mine and c not in seen.others]
        self._free_looks = {c: self._free_looks.get(c, 0) + 1 for c in free}
        return self._free_looks

    def _set_led(self, led: frozenset[str], why: str) -> None:
        before = self._led
        self._led = led
        for cluster in sorted(before - led):
            self._log.info(
                "leader: replica %s no longer leads cluster %s (%s)", self.replica_id, cluster, why
            )
            self._on_change(cluster, False)
        for cluster in sorted(led - before):
            self._log.info("leader: replica %s leads cluster %s", self.replica_id, cluster)
            self._on_change(cluster, True)

    def _lost(self, error: BaseException) -> None:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        message = f"cannot reach the database {self._where}: {detail}"
        if self._led:
            self._log.error(
                "leader: %s; stopped polling and delivering cluster(s) %s until it is back "
                "(this replica cannot prove it still leads them)",
                message,
                ", ".join(sorted(self._led)),
            )
        self._pid, self._last_ok = None, None
        self._set_led(frozenset(), "lost the database")
        self._database(False, message)
        # A new session next time: closing the old one releases whatever it still holds,
        # and the clusters are then taken again only when no poll of theirs is in flight.
        self._discard = True

    def _database(self, ok: bool, detail: str) -> None:
        if ok != self._database_ok:
            if ok and self._database_ok is False:
                self._log.warning("leader: %s again; taking a share of the clusters", detail)
            self._database_ok = ok
            self._on_database(ok, detail)
