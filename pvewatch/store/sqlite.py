"""The SQLite state store: snapshots, events and the transactional outbox.

One poll is one transaction (`commit_poll`): the rows of the snapshot that changed, the
events the poll produced, one outbox row per (event, sink) and the cluster's health. A
crash at any point keeps all of it or none of it, so nothing is lost and nothing is
re-diffed under a new event id.

WAL journal, `synchronous=FULL` (a commit is on disk once `commit_poll` returns, even
after a power cut; one fsync per poll is cheap), one connection shared by threads under
one lock. Times are stored as UTC epoch seconds (REAL). sqlite3 errors become
`StoreError` in one place, `_translated`. The schema and the statements are in
`sqlite_sql`, as PostgreSQL's are in `postgres_sql`.

To make an unchanged poll of a big cluster cheap, the last committed snapshot of each
cluster is kept in memory and compared in Python. `PRAGMA data_version` tells when
another connection wrote the file; the cache is dropped then.

Over 350 lines: one class, the whole Store protocol on SQLite; its SQL is in
`sqlite_sql`, what both backends write and read in `rows`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from pvewatch.duplicates import LOOKBACK_SECS
from pvewatch.errors import StoreError
from pvewatch.model import Event, Resource, Snapshot, SourceHealth
from pvewatch.silence import Matcher, Silence
from pvewatch.store import sqlite_sql as sql
from pvewatch.store.base import (
    CheckState,
    ClusterStatus,
    Delivery,
    EventQuery,
    OutboxItem,
    Queue,
    Routing,
)
from pvewatch.store.rows import (
    QUEUE_COUNTS,
    Reader,
    changed_resources,
    deduplicated,
    event_rows,
    queues,
    to_json,
)

__all__ = ["SCHEMA_VERSION", "OutboxItem", "SqliteStore"]

SCHEMA_VERSION = sql.SCHEMA_VERSION

_MAX_ERROR_CHARS = 2000


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _ts(t: datetime) -> float:
    """Epoch seconds; a naive datetime is taken to be UTC."""
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class SqliteStore:
    """The state store in one SQLite file (or ":memory:"). Thread-safe; one writer."""

    def __init__(
        self,
        path: Path | str,
        *,
        clock: Callable[[], datetime] = _utc_now,
        busy_timeout_secs: float = 5.0,
    ) -> None:
        self._where = str(path)
        self._read = Reader(self._where, _dt)
        self._clock = clock
        self._lock = threading.Lock()
        # The last committed resources of each cluster, to compare a new poll against.
        self._committed: dict[str, dict[str, Resource]] = {}
        self._data_version: int | None = None
        with self._translated("open"):
            conn = sqlite3.connect(
                path, timeout=busy_timeout_secs, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = FULL")
                conn.execute("PRAGMA foreign_keys = ON")
                self._migrate(conn)
            except BaseException:
                conn.close()
                raise
        self._conn: sqlite3.Connection | None = conn

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._lock, self._translated("close"):
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # --- snapshots and health -------------------------------------------------------

    def load(self, cluster: str) -> tuple[Snapshot | None, SourceHealth]:
        """The last snapshot and health of a cluster; (None, SourceHealth()) if unknown."""
        with self._lock, self._transaction(f"load cluster {cluster!r}") as conn:
            row = conn.execute(sql.SELECT_CLUSTER, (cluster,)).fetchone()
            if row is None:
                return None, SourceHealth()
            health = SourceHealth(int(row[1]), bool(row[2]), row[3])
            if row[0] is None:
                return None, health
            resources = self._resources(conn, cluster)
            self._committed[cluster] = resources
            quorate = None if row[4] is None else bool(row[4])
            return Snapshot(cluster, dict(resources), _dt(row[0]), quorate), health

    def load_rule_state(self, cluster: str) -> dict[str, Any]:
        """What the rules stored for a cluster at its last commit; {} if nothing."""
        with self._lock, self._transaction(f"load rule state of cluster {cluster!r}") as conn:
            row = conn.execute(sql.SELECT_RULE_STATE, (cluster,))
            found = row.fetchone()
        return {} if found is None else self._read.rule_state(cluster, found[0])

    def commit_poll(
        self,
        cluster: str,
        *,
        snapshot: Snapshot | None,
        events: Sequence[Event],
        sinks: Routing,
        health: SourceHealth,
        rule_state: Mapping[str, Any] | None = None,
    ) -> None:
        """Store one poll in one transaction. `snapshot=None` is a failed poll: the stored
        snapshot stays, only health and events are written. Known event ids are skipped.
        `sinks` lists the sinks every event goes to, or is a function naming them per event.
        `rule_state`, when given, replaces what the rules remember for the cluster."""
        if snapshot is not None and snapshot.cluster != cluster:
            raise ValueError(f"snapshot of cluster {snapshot.cluster!r} committed as {cluster!r}")
        now = _ts(self._clock())
        with self._lock:
            with self._transaction(f"commit poll of cluster {cluster!r}", write=True) as conn:
                taken_at = _ts(snapshot.taken_at) if snapshot else None
                conn.execute(
                    sql.UPSERT_CLUSTER,
                    (
                        cluster,
                        taken_at,
                        health.consecutive_failures,
                        health.unreachable,
                        health.last_error,
                        None if snapshot is None or snapshot.quorate is None else snapshot.quorate,
                    ),
                )
                if rule_state is not None:
                    data = to_json(dict(rule_state), f"rule state of {cluster!r}")
                    conn.execute(sql.UPSERT_RULE_STATE, (cluster, data))
                if snapshot is not None:
                    self._write_changes(conn, cluster, dict(snapshot.resources))
                self._write_events(conn, events, sinks, now)
            # Only now is it on disk; a rolled-back poll must not reach the cache.
            if snapshot is not None:
                self._committed[cluster] = dict(snapshot.resources)

    def load_check(self, cluster: str, name: str) -> dict[str, Any]:
        """What check `name` of `cluster` stored at its last run; {} if nothing."""
        with self._lock, self._transaction(f"load check {name} of {cluster!r}") as conn:
            found = conn.execute(sql.SELECT_CHECK, (cluster, name)).fetchone()
        return {} if found is None else self._read.rule_state(cluster, found[0])

    def commit_check(
        self,
        cluster: str,
        name: str,
        *,
        state: Mapping[str, Any],
        status: CheckState,
        events: Sequence[Event],
        sinks: Routing,
    ) -> None:
        """One run of a check (see Store.commit_check), in one transaction."""
        now = _ts(self._clock())
        data = to_json(dict(state), f"check {name} of {cluster!r}")
        last = None if status.last_run is None else _ts(status.last_run)
        row = (cluster, name, status.status, status.detail, last, status.open_conditions, data)
        what = f"commit check {name} of {cluster!r}"
        with self._lock, self._transaction(what, write=True) as conn:
            conn.execute(sql.UPSERT_CHECK, row)
            self._write_events(conn, events, sinks, now)

    def check_states(self, cluster: str) -> list[CheckState]:
        with self._lock, self._transaction(f"read the checks of {cluster!r}") as conn:
            rows = conn.execute(sql.SELECT_CHECKS, (cluster,)).fetchall()
        return [
            CheckState(name, status, None if last is None else _dt(last), n, detail)
            for name, status, last, n, detail in rows
        ]

    def clusters(self) -> list[str]:
        with self._lock, self._transaction("list clusters") as conn:
            return [r[0] for r in conn.execute(sql.SELECT_CLUSTER_NAMES)]

    def status(self) -> list[ClusterStatus]:
        """Each stored cluster: its last snapshot and health (one replica leads them all)."""
        with self._lock, self._transaction("read the status") as conn:
            rows = conn.execute(sql.SELECT_STATUS).fetchall()
        return [
            ClusterStatus(name, None if at is None else _dt(at), SourceHealth(n, bool(u), err))
            for name, at, n, u, err in rows
        ]

    # --- the outbox -----------------------------------------------------------------

    def due(self, sink: str, now: datetime, limit: int = 100) -> list[OutboxItem]:
        """The pending rows of a sink in outbox_id (= event) order, whatever their
        next_attempt_at: the caller waits for the head itself, to keep the order."""
        if limit <= 0:
            return []
        with self._lock, self._transaction(f"read outbox of sink {sink!r}") as conn:
            rows = conn.execute(sql.SELECT_DUE, (sink, limit)).fetchall()
        return [self._read.item(r) for r in rows]

    def heads(
        self,
        sink: str,
        limit: int = 100,
        after: int = 0,
        clusters: Collection[str] | None = None,
    ) -> list[OutboxItem]:
        """The first pending row of each line (cluster, resource) of a sink, in outbox_id
        order, whatever its next_attempt_at: only a line's head may be sent, so events
        about one resource keep their order while other resources go on. `after`: the
        last outbox_id of the previous page; `clusters`: only rows of these (None: all)."""
        if limit <= 0 or (clusters is not None and not clusters):
            return []
        only = None if clusters is None else json.dumps(sorted(clusters))
        params = {"sink": sink, "limit": limit, "after": after, "clusters": only}
        with self._lock, self._transaction(f"read outbox heads of sink {sink!r}") as conn:
            rows = conn.execute(sql.SELECT_HEADS, params).fetchall()
        return [self._read.item(r) for r in rows]

    def record_events(self, events: Sequence[Event], sinks: Routing) -> list[Event]:
        """Record events that no poll produced (e.g. sink.disabled, a notification), with
        their outbox rows, in one transaction. Known event ids are skipped. The events as
        recorded: a second sighting marked a duplicate (pvewatch.duplicates)."""
        now = _ts(self._clock())
        with self._lock, self._transaction("record events", write=True) as conn:
            return self._write_events(conn, events, sinks, now)

    def deliveries(
        self, *, sink: str | None = None, state: str | None = None, limit: int = 1000
    ) -> list[OutboxItem]:
        """Outbox rows in outbox_id order: of one sink or all, in one state or (None) every
        row not yet delivered."""
        params = {"sink": sink, "state": state, "limit": limit}
        with self._lock, self._transaction("list deliveries") as conn:
            rows = conn.execute(sql.SELECT_DELIVERIES, params).fetchall()
        return [self._read.item(r) for r in rows]

    def requeue(self, *, sinks: Sequence[str], event_id: str | None, now: datetime) -> int:
        """Queue rows again from scratch (attempts 0, due `now`): the rows of `event_id`
        for `sinks` whatever their state, or with `event_id` None every dead row of
        `sinks`. A row keeps its place: it goes before later events about its resource.
        The number of rows queued."""
        params = {"sinks": json.dumps(list(sinks)), "event": event_id, "now": _ts(now)}
        with self._lock, self._transaction("requeue deliveries", write=True) as conn:
            return int(conn.execute(sql.REQUEUE, params).rowcount)

    def mark_delivered(self, outbox_id: int, now: datetime) -> None:
        self._transition(outbox_id, "delivered", sql.MARK_DELIVERED, (_ts(now),))

    def mark_delivered_many(self, marks: Sequence[tuple[int, datetime]]) -> None:
        """`mark_delivered(outbox_id, now)` of each pair in one transaction (one fsync for
        a batch); a row that may not be marked fails the whole batch, nothing is written."""
        what = f"mark {len(marks)} outbox rows delivered"
        with self._lock, self._transaction(what, write=True) as conn:
            for outbox_id, now in marks:
                self._mark(conn, outbox_id, "delivered", sql.MARK_DELIVERED, (_ts(now),))

    def mark_retry(
        self, outbox_id: int, *, attempts: int, next_attempt_at: datetime, error: str
    ) -> None:
        params = (attempts, _ts(next_attempt_at), error[:_MAX_ERROR_CHARS])
        self._transition(outbox_id, "pending", sql.MARK_RETRY, params)

    def mark_dead(self, outbox_id: int, *, attempts: int, error: str, now: datetime) -> None:
        params = (attempts, error[:_MAX_ERROR_CHARS], _ts(now))
        self._transition(outbox_id, "dead", sql.MARK_DEAD, params)

    def pending_count(self, sink: str) -> int:
        return self._count(sink, "pending")

    def dead_count(self, sink: str) -> int:
        return self._count(sink, "dead")

    def sink_state(self, sink: str) -> dict[str, str]:
        with self._lock, self._transaction(f"read the state of sink {sink!r}") as conn:
            return dict(conn.execute(sql.SELECT_SINK_STATE, (sink,)).fetchall())

    def put_sink_state(self, sink: str, key: str, data: str | None) -> None:
        what = f"write the state of sink {sink!r}"
        with self._lock, self._transaction(what, write=True) as conn:
            if data is None:
                conn.execute(sql.DELETE_SINK_STATE, (sink, key))
            else:
                conn.execute(sql.UPSERT_SINK_STATE, (sink, key, data))

    def _count(self, sink: str, state: str) -> int:
        with self._lock, self._transaction(f"count {state} outbox rows of sink {sink!r}") as conn:
            row = conn.execute(sql.COUNT_OUTBOX, (sink, state)).fetchone()
        return int(row[0])

    # --- silences -------------------------------------------------------------------

    def add_silence(
        self,
        matchers: Sequence[Matcher],
        *,
        starts_at: datetime,
        ends_at: datetime,
        comment: str,
        created_by: str | None,
    ) -> Silence:
        """Store a silence; it gets the next id ("1", "2", ...)."""
        match = ",".join(str(m) for m in matchers)
        params = (match, _ts(starts_at), _ts(ends_at), comment, created_by, _ts(self._clock()))
        with self._lock, self._transaction("add a silence", write=True) as conn:
            sid = conn.execute(sql.INSERT_SILENCE, params).lastrowid
        return Silence(str(sid), tuple(matchers), starts_at, ends_at, comment, created_by)

    def silences(self, now: datetime | None = None) -> list[Silence]:
        """The silences not yet expired at `now` (all of them when `now` is None)."""
        params = {"now": _ts(now) if now else None}
        with self._lock, self._transaction("read silences") as conn:
            rows = conn.execute(sql.SELECT_SILENCES, params).fetchall()
        return [self._read.silence(row) for row in rows]

    def remove_silence(self, silence_id: str) -> bool:
        """Delete a silence; False when there is none with that id."""
        with self._lock, self._transaction(f"remove silence {silence_id}", write=True) as conn:
            deleted = conn.execute(sql.DELETE_SILENCE, (silence_id,)).rowcount
        return bool(deleted)

    # --- history --------------------------------------------------------------------

    def events(
        self,
        *,
        since: datetime | None = None,
        type_pattern: str | None = None,
        cluster: str | None = None,
        limit: int = 1000,
    ) -> list[Event]:
        """The newest `limit` events matching every filter given, oldest first.
        `since` is inclusive; `type_pattern` is a case-sensitive glob like "guest.*"."""
        if limit <= 0:
            return []
        params = {
            "since": _ts(since) if since else None,
            "pattern": type_pattern,
            "cluster": cluster,
            "limit": limit,
        }
        with self._lock, self._transaction("read events") as conn:
            rows = conn.execute(sql.SELECT_EVENTS, params).fetchall()
        return [self._read.event(r[0], "an event") for r in reversed(rows)]

    def browse(self, query: EventQuery) -> list[tuple[int, Event]]:
        if query.limit <= 0:
            return []
        statement, params = sql.browse(query, _ts)
        with self._lock, self._transaction("browse events") as conn:
            rows = conn.execute(statement, params).fetchall()
        return [(seq, self._read.event(data, f"event {seq}")) for seq, data in rows]

    def delivery_states(self, event_ids: Collection[str]) -> list[Delivery]:
        if not event_ids:
            return []
        with self._lock, self._transaction("read delivery states") as conn:
            rows = conn.execute(sql.DELIVERY_STATES, (json.dumps(list(event_ids)),))
            return [Delivery(*row) for row in rows]

    def queues(self) -> list[Queue]:
        with self._lock, self._transaction("read the queues") as conn:

            def last_error(sink: str, state: str) -> Any:
                return conn.execute(sql.QUEUE_LAST_ERROR, (sink, state)).fetchone()

            return queues(conn.execute(QUEUE_COUNTS).fetchall(), last_error)

    def resource_counts(self) -> list[tuple[str, str, str | None, int]]:
        with self._lock, self._transaction("count resources") as conn:
            return [(c, t, s, int(n)) for c, t, s, n in conn.execute(sql.RESOURCE_COUNTS)]

    def prune(self, now: datetime, retention_days: int) -> int:
        """Delete what is older than the retention and no sink still needs; the number
        of rows deleted."""
        cutoff = {"cutoff": _ts(now - timedelta(days=retention_days))}
        with self._lock, self._transaction("prune", write=True) as conn:
            outbox = conn.execute(sql.PRUNE_OUTBOX, cutoff).rowcount
            events = conn.execute(sql.PRUNE_EVENTS, cutoff).rowcount
            silences = conn.execute(sql.PRUNE_SILENCES, cutoff)
        return int(outbox + events + silences.rowcount)

    # --- maintenance ----------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        with self._lock, self._transaction("read schema version") as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])

    @property
    def total_changes(self) -> int:
        """Rows inserted, updated or deleted through this store since it was opened."""
        with self._lock, self._transaction("count changes") as conn:
            return int(conn.total_changes)

    def check_integrity(self) -> list[str]:
        """What `PRAGMA integrity_check` and `foreign_key_check` find; [] when all is well."""
        with self._lock, self._transaction("check integrity") as conn:
            problems = [r[0] for r in conn.execute("PRAGMA integrity_check") if r[0] != "ok"]
            problems += [
                f"{r[0]} row {r[1]} refers to a missing {r[2]} row"
                for r in conn.execute("PRAGMA foreign_key_check")
            ]
        return problems

    # --- internals ------------------------------------------------------------------

    @contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        """The one place where sqlite3 errors become StoreError: what failed, and where."""
        try:
            yield
        except sqlite3.Error as e:
            raise StoreError(f"state store {self._where}: {what} failed: {e}") from e

    @contextmanager
    def _transaction(self, what: str, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction; the caller holds the lock. Rolled back on any exception."""
        with self._translated(what):
            conn = self._conn
            if conn is None:
                raise StoreError(f"state store {self._where}: {what}: the store is closed")
            # IMMEDIATE takes the write lock up front, so a busy file fails here (after
            # busy_timeout) and not halfway through the poll.
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                self._drop_cache_if_changed(conn)
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise

    def _drop_cache_if_changed(self, conn: sqlite3.Connection) -> None:
        version = int(conn.execute("PRAGMA data_version").fetchone()[0])
        if version != self._data_version:
            self._committed.clear()
            self._data_version = version

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Read inside the write transaction: another process may be migrating too.
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"state store {self._where}: schema version {version} is newer than "
                    f"this pvewatch knows (up to {SCHEMA_VERSION}); upgrade pvewatch"
                )
            for number in range(version + 1, SCHEMA_VERSION + 1):
                for statement in sql.MIGRATIONS[number - 1]:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number:d}")
            conn.execute("COMMIT")
        except BaseException:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    def _resources(self, conn: sqlite3.Connection, cluster: str) -> dict[str, Resource]:
        rows = conn.execute("SELECT id, data FROM resources WHERE cluster = ?", (cluster,))
        return {rid: self._read.resource(cluster, rid, data) for rid, data in rows}

    def _write_changes(
        self, conn: sqlite3.Connection, cluster: str, new: dict[str, Resource]
    ) -> None:
        old = self._committed.get(cluster)
        if old is None:
            old = self._resources(conn, cluster)
        changed, removed = changed_resources(cluster, new, old)
        conn.executemany(sql.UPSERT_RESOURCE, changed)
        conn.executemany("DELETE FROM resources WHERE cluster = ? AND id = ?", removed)

    def _write_events(
        self, conn: sqlite3.Connection, events: Sequence[Event], sinks: Routing, now: float
    ) -> list[Event]:
        def recent(event: Event, types: tuple[str, ...]) -> list[Event]:
            params = {
                "cluster": event.cluster,
                "since": min(now, _ts(event.time)) - LOOKBACK_SECS,
                "types": json.dumps(types),
            }
            rows = conn.execute(sql.SELECT_RECENT, params).fetchall()
            return [self._read.event(r[0], "an event") for r in rows]

        recorded, updated = deduplicated(events, recent)
        conn.executemany(
            sql.UPDATE_EVENT_DATA,
            [(to_json(e.to_dict(), f"event {e.id}"), e.id) for e in updated],
        )
        event_rows_, outbox_rows = event_rows(recorded, sinks, now, _ts)
        conn.executemany(sql.INSERT_EVENT, event_rows_)
        conn.executemany(sql.INSERT_OUTBOX, outbox_rows)
        return recorded

    def _transition(self, outbox_id: int, target: str, sql: str, params: tuple[Any, ...]) -> None:
        """Apply a mark_* to a pending row; marking a row again with its state is a no-op."""
        what = f"mark outbox row {outbox_id} {target}"
        with self._lock, self._transaction(what, write=True) as conn:
            self._mark(conn, outbox_id, target, sql, params)

    def _mark(
        self,
        conn: sqlite3.Connection,
        outbox_id: int,
        target: str,
        sql: str,
        params: tuple[Any, ...],
    ) -> None:
        what = f"mark outbox row {outbox_id} {target}"
        row = conn.execute("SELECT state FROM outbox WHERE outbox_id = ?", (outbox_id,))
        if self._read.may_mark(what, row.fetchone(), target):
            conn.execute(sql, (*params, outbox_id))
