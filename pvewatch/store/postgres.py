"""The PostgreSQL state store: the same interface and meaning as the SQLite one
(pvewatch.store.sqlite), for replicas that share their clusters (pvewatch.store.leadership).

One poll is one transaction: snapshot rows, events, outbox rows, health and rule state.
Each commit and each load of a cluster first takes the cluster's "commit" advisory lock
for the transaction, so a new leader's load waits for the last commit of the old one and
reads after it. With `fencing`, a commit also checks that this replica's leadership
session still holds the cluster's lock, in the same transaction: a replica that lost its
lock (its session ended, or it released the cluster) cannot write a stale poll.

One connection shared by threads under one lock; it is opened again on the next call
after it broke (the server restarted, the network failed, the backend was terminated).
psycopg is imported here and in pvewatch.store.pg_leader only; its errors become
`StoreError` in one place, `_translated`. Messages name the server, never the password.

Over 350 lines: one class, the whole Store protocol on PostgreSQL with its fencing;
its SQL is in `postgres_sql`, what both backends write and read in `rows`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import psycopg

from pvewatch.config.types import PostgresConfig
from pvewatch.duplicates import LOOKBACK_SECS
from pvewatch.errors import StoreError
from pvewatch.model import Event, Resource, Snapshot, SourceHealth
from pvewatch.silence import Matcher, Silence
from pvewatch.store import postgres_sql as sql
from pvewatch.store.base import (
    CheckState,
    ClusterStatus,
    Delivery,
    EventQuery,
    Fencing,
    OutboxItem,
    Queue,
    Routing,
)
from pvewatch.store.leadership import lock_key
from pvewatch.store.rows import (
    QUEUE_COUNTS,
    Reader,
    changed_resources,
    deduplicated,
    event_rows,
    queues,
    to_json,
)

__all__ = ["NotLeader", "PostgresStore", "connect_args"]

_MAX_ERROR_CHARS = 2000
CONNECT_TIMEOUT_SECS = 5


class NotLeader(StoreError):
    """A commit refused: this replica does not hold the cluster's leadership lock."""


def connect_args(config: PostgresConfig, application_name: str) -> dict[str, Any]:
    """psycopg.connect's arguments: the dsn, its parts from the config (they win), and
    keepalives so that a dead peer is noticed in seconds, on both sides."""
    args: dict[str, Any] = {
        "conninfo": config.dsn.reveal() if config.dsn else "",
        "application_name": application_name,
        "connect_timeout": CONNECT_TIMEOUT_SECS,
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "tcp_user_timeout": 10_000,
        # The server drops a silent client as quickly, which releases its locks.
        "options": "-c TimeZone=UTC -c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2"
        " -c tcp_keepalives_count=3 -c tcp_user_timeout=10000",
    }
    parts = {"host": config.host, "port": config.port, "dbname": config.dbname}
    parts |= {
        "user": config.user,
        "password": config.password.reveal() if config.password else None,
    }
    return args | {k: v for k, v in parts.items() if v is not None}


def _utc(t: datetime) -> datetime:
    """A naive datetime is taken to be UTC, as in the SQLite store."""
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _dt(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _text(value: str | None) -> str | None:
    """PostgreSQL text holds no NUL character; what a server sent may."""
    return None if value is None else value.replace("\x00", "\ufffd")


class PostgresStore:
    """The state store in a PostgreSQL database. Thread-safe."""

    def __init__(
        self,
        config: PostgresConfig,
        *,
        application_name: str = "pvewatch",
        fencing: Fencing | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._where = config.where()
        self._read = Reader(self._where, _dt)
        self._connect_args = connect_args(config, application_name)
        self._fencing = fencing
        self._clock = clock
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._closed = False
        # The last committed resources of each cluster, to compare a new poll against,
        # with the xmin of the cluster's row then: every commit rewrites that row, so
        # another xmin means another writer (a replica that led the cluster meanwhile).
        self._committed: dict[str, tuple[str, dict[str, Resource]]] = {}
        self._changes = 0
        with self._lock, self._translated("open"):
            self._migrate(self._connection())

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    # --- snapshots and health -------------------------------------------------------

    def load(self, cluster: str) -> tuple[Snapshot | None, SourceHealth]:
        """The last snapshot and health of a cluster; (None, SourceHealth()) if unknown.
        Waits for a commit of the cluster in flight (by any replica) and reads after it."""
        with self._transaction(f"load cluster {cluster!r}") as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(cluster, "commit"),))
            cur.execute(
                "SELECT taken_at, consecutive_failures, unreachable, last_error, quorate,"
                " xmin::text FROM clusters WHERE name = %s",
                (cluster,),
            )
            row = cur.fetchone()
            self._committed.pop(cluster, None)
            if row is None:
                return None, SourceHealth()
            health = SourceHealth(int(row[1]), bool(row[2]), row[3])
            if row[0] is None:
                return None, health
            resources = self._resources(cur, cluster)
            self._committed[cluster] = (row[5], resources)
            return Snapshot(cluster, dict(resources), _dt(row[0]), row[4]), health

    def load_rule_state(self, cluster: str) -> dict[str, Any]:
        """What the rules stored for a cluster at its last commit; {} if nothing."""
        with self._transaction(f"load rule state of cluster {cluster!r}") as cur:
            cur.execute("SELECT data FROM rule_state WHERE cluster = %s", (cluster,))
            found = cur.fetchone()
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
        """Store one poll in one transaction (see SqliteStore.commit_poll); with fencing,
        only while this replica leads the cluster (else NotLeader, nothing written)."""
        if snapshot is not None and snapshot.cluster != cluster:
            raise ValueError(f"snapshot of cluster {snapshot.cluster!r} committed as {cluster!r}")
        now = self._clock()
        what = f"commit poll of cluster {cluster!r}"
        with self._transaction(what) as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(cluster, "commit"),))
            self._check_leader(cur, cluster, what)
            stored = self._cached(cur, cluster)
            taken_at = _utc(snapshot.taken_at) if snapshot else None
            quorate = None if snapshot is None else snapshot.quorate
            cur.execute(
                sql.UPSERT_CLUSTER,
                (cluster, taken_at, health.consecutive_failures, health.unreachable,
                 _text(health.last_error), quorate),
            )  # fmt: skip
            xmin = str(cur.fetchone()[0])  # type: ignore[index]
            self._changes += 1
            if rule_state is not None:
                data = to_json(dict(rule_state), f"rule state of {cluster!r}")
                cur.execute(sql.UPSERT_RULE_STATE, (cluster, data))
            if snapshot is not None:
                old, stored = stored, dict(snapshot.resources)
                self._write_changes(cur, cluster, stored, old)
            self._write_events(cur, events, sinks, now)
        # Only now is it committed; a rolled-back poll must not reach the cache.
        if stored is not None:
            self._committed[cluster] = (xmin, stored)

    def load_check(self, cluster: str, name: str) -> dict[str, Any]:
        """What check `name` of `cluster` stored at its last run; {} if nothing."""
        with self._transaction(f"load check {name} of {cluster!r}") as cur:
            cur.execute(sql.SELECT_CHECK, (cluster, name))
            found = cur.fetchone()
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
        """One run of a check (see Store.commit_check); with fencing, only while this
        replica leads the cluster (else NotLeader, nothing written)."""
        now = self._clock()
        what = f"commit check {name} of {cluster!r}"
        data = to_json(dict(state), f"check {name} of {cluster!r}")
        last = None if status.last_run is None else _utc(status.last_run)
        row = (cluster, name, status.status, status.detail, last, status.open_conditions, data)
        with self._transaction(what) as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(cluster, "commit"),))
            self._check_leader(cur, cluster, what)
            cur.execute(sql.UPSERT_CHECK, row)
            self._changes += 1
            self._write_events(cur, events, sinks, now)

    def check_states(self, cluster: str) -> list[CheckState]:
        with self._transaction(f"read the checks of {cluster!r}") as cur:
            cur.execute(sql.SELECT_CHECKS, (cluster,))
            rows = cur.fetchall()
        return [
            CheckState(name, status, None if last is None else _dt(last), n, detail)
            for name, status, last, n, detail in rows
        ]

    def clusters(self) -> list[str]:
        with self._transaction("list clusters") as cur:
            cur.execute("SELECT name FROM clusters ORDER BY name")
            return [r[0] for r in cur.fetchall()]

    def status(self) -> list[ClusterStatus]:
        """Each stored cluster: its last snapshot, its health, and the replica that leads
        it (when that replica's session still holds the lock) and since when."""
        found = []
        with self._transaction("read the status") as cur:
            cur.execute(sql.SELECT_STATUS)
            for name, taken_at, failures, unreachable, error, replica, since, pid in list(cur):
                held = False
                if replica is not None and pid is not None:
                    cur.execute(sql.LOCK_HELD_BY, {"pid": pid, "key": lock_key(name)})
                    held = bool(cur.fetchone()[0])  # type: ignore[index]
                found.append(
                    ClusterStatus(
                        cluster=name,
                        last_poll=_dt(taken_at) if taken_at else None,
                        health=SourceHealth(failures, unreachable, error),
                        leader=replica if held else None,
                        leader_since=_dt(since) if held else None,
                    )
                )
        return found

    # --- the outbox -----------------------------------------------------------------

    def due(self, sink: str, now: datetime, limit: int = 100) -> list[OutboxItem]:
        """The pending rows of a sink in outbox_id order, whatever their next_attempt_at."""
        if limit <= 0:
            return []
        return self._items(f"read outbox of sink {sink!r}", sql.SELECT_DUE, (sink, limit))

    def heads(
        self,
        sink: str,
        limit: int = 100,
        after: int = 0,
        clusters: Collection[str] | None = None,
    ) -> list[OutboxItem]:
        """The first pending row of each line (cluster, resource) of a sink, in outbox_id
        order; only of `clusters` when given (the ones this replica leads). With fencing,
        only of those whose lock the leadership session still holds, as the server says
        now: a replica cut off stops delivering before its next look notices."""
        if limit <= 0 or (clusters is not None and not clusters):
            return []
        with self._transaction(f"read outbox heads of sink {sink!r}") as cur:
            if clusters is not None and self._fencing is not None:
                clusters = self._still_led(cur, clusters)
            params = {
                "sink": sink,
                "limit": limit,
                "after": after,
                "clusters": None if clusters is None else sorted(clusters),
            }
            cur.execute(sql.SELECT_HEADS, params)
            rows = cur.fetchall()
        return [self._read.item(r) for r in rows]

    def record_events(self, events: Sequence[Event], sinks: Routing) -> list[Event]:
        """Record events that no poll produced, with their outbox rows, in one
        transaction. Known event ids are skipped. The events as recorded (see
        SqliteStore.record_events)."""
        now = self._clock()
        with self._transaction("record events") as cur:
            return self._write_events(cur, events, sinks, now)

    def deliveries(
        self, *, sink: str | None = None, state: str | None = None, limit: int = 1000
    ) -> list[OutboxItem]:
        params = {"sink": sink, "state": state, "limit": limit}
        return self._items("list deliveries", sql.SELECT_DELIVERIES, params)

    def requeue(self, *, sinks: Sequence[str], event_id: str | None, now: datetime) -> int:
        """Queue rows again from scratch (see SqliteStore.requeue)."""
        params = {"sinks": list(sinks), "event": event_id, "now": _utc(now)}
        with self._transaction("requeue deliveries") as cur:
            cur.execute(sql.REQUEUE, params)
            return cur.rowcount

    def mark_delivered(self, outbox_id: int, now: datetime) -> None:
        self._transition(outbox_id, "delivered", sql.MARK_DELIVERED, (_utc(now),))

    def mark_delivered_many(self, marks: Sequence[tuple[int, datetime]]) -> None:
        """`mark_delivered(outbox_id, now)` of each pair in one transaction; a row that may
        not be marked fails the whole batch, and nothing is written."""
        with self._transaction(f"mark {len(marks)} outbox rows delivered") as cur:
            for outbox_id, now in marks:
                self._mark(cur, outbox_id, "delivered", sql.MARK_DELIVERED, (_utc(now),))

    def mark_retry(
        self, outbox_id: int, *, attempts: int, next_attempt_at: datetime, error: str
    ) -> None:
        params = (attempts, _utc(next_attempt_at), _text(error[:_MAX_ERROR_CHARS]))
        self._transition(outbox_id, "pending", sql.MARK_RETRY, params)

    def mark_dead(self, outbox_id: int, *, attempts: int, error: str, now: datetime) -> None:
        params = (attempts, _text(error[:_MAX_ERROR_CHARS]), _utc(now))
        self._transition(outbox_id, "dead", sql.MARK_DEAD, params)

    def pending_count(self, sink: str) -> int:
        return self._count(sink, "pending")

    def dead_count(self, sink: str) -> int:
        return self._count(sink, "dead")

    def sink_state(self, sink: str) -> dict[str, str]:
        with self._transaction(f"read the state of sink {sink!r}") as cur:
            cur.execute("SELECT key, data FROM sink_state WHERE sink = %s ORDER BY key", (sink,))
            return {str(k): str(v) for k, v in cur.fetchall()}

    def put_sink_state(self, sink: str, key: str, data: str | None) -> None:
        with self._transaction(f"write the state of sink {sink!r}") as cur:
            if data is None:
                cur.execute("DELETE FROM sink_state WHERE sink = %s AND key = %s", (sink, key))
            else:
                cur.execute(
                    "INSERT INTO sink_state (sink, key, data) VALUES (%s, %s, %s)"
                    " ON CONFLICT (sink, key) DO UPDATE SET data = excluded.data",
                    (sink, key, _text(data)),
                )

    def _count(self, sink: str, state: str) -> int:
        with self._transaction(f"count {state} outbox rows of sink {sink!r}") as cur:
            cur.execute("SELECT count(*) FROM outbox WHERE sink = %s AND state = %s", (sink, state))
            return int(cur.fetchone()[0])  # type: ignore[index]

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
        match = ",".join(str(m) for m in matchers)
        params = (match, _utc(starts_at), _utc(ends_at), _text(comment), _text(created_by),
                  self._clock())  # fmt: skip
        with self._transaction("add a silence") as cur:
            cur.execute(sql.INSERT_SILENCE, params)
            sid = cur.fetchone()[0]  # type: ignore[index]
        return Silence(str(sid), tuple(matchers), starts_at, ends_at, comment, created_by)

    def silences(self, now: datetime | None = None) -> list[Silence]:
        params = {"now": _utc(now) if now else None}
        with self._transaction("read silences") as cur:
            cur.execute(sql.SELECT_SILENCES, params)
            rows = cur.fetchall()
        return [self._read.silence(row) for row in rows]

    def remove_silence(self, silence_id: str) -> bool:
        if not silence_id.isdigit():
            return False
        with self._transaction(f"remove silence {silence_id}") as cur:
            cur.execute("DELETE FROM silences WHERE id = %s", (int(silence_id),))
            return cur.rowcount > 0

    # --- history --------------------------------------------------------------------

    def events(
        self,
        *,
        since: datetime | None = None,
        type_pattern: str | None = None,
        cluster: str | None = None,
        limit: int = 1000,
    ) -> list[Event]:
        """The newest `limit` events matching every filter given, oldest first."""
        if limit <= 0:
            return []
        params = {
            "since": _utc(since) if since else None,
            "pattern": sql.glob_to_regex(type_pattern) if type_pattern is not None else None,
            "cluster": cluster,
            "limit": limit,
        }
        with self._transaction("read events") as cur:
            cur.execute(sql.SELECT_EVENTS, params)
            rows = cur.fetchall()
        return [self._read.event(r[0], "an event") for r in reversed(rows)]

    def browse(self, query: EventQuery) -> list[tuple[int, Event]]:
        if query.limit <= 0:
            return []
        statement, params = sql.browse(query)
        with self._transaction("browse events") as cur:
            cur.execute(statement, params)
            rows = cur.fetchall()
        return [(seq, self._read.event(data, f"event {seq}")) for seq, data in rows]

    def delivery_states(self, event_ids: Collection[str]) -> list[Delivery]:
        if not event_ids:
            return []
        with self._transaction("read delivery states") as cur:
            cur.execute(sql.DELIVERY_STATES, (list(event_ids),))
            return [Delivery(*row) for row in cur.fetchall()]

    def queues(self) -> list[Queue]:
        with self._transaction("read the queues") as cur:
            cur.execute(QUEUE_COUNTS)
            counts = cur.fetchall()

            def last_error(sink: str, state: str) -> tuple[Any, ...] | None:
                cur.execute(sql.QUEUE_LAST_ERROR, (sink, state))
                return cur.fetchone()

            return queues(counts, last_error)

    def resource_counts(self) -> list[tuple[str, str, str | None, int]]:
        with self._transaction("count resources") as cur:
            cur.execute(sql.RESOURCE_COUNTS)
            return [(c, t, s, int(n)) for c, t, s, n in cur.fetchall()]

    def prune(self, now: datetime, retention_days: int) -> int:
        cutoff = {"cutoff": _utc(now) - timedelta(days=retention_days)}
        deleted = 0
        with self._transaction("prune") as cur:
            for statement in (sql.PRUNE_OUTBOX, sql.PRUNE_EVENTS, sql.PRUNE_SILENCES):
                cur.execute(statement, cutoff)
                deleted += cur.rowcount
        return deleted

    # --- maintenance ----------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        with self._transaction("read schema version") as cur:
            cur.execute("SELECT version FROM schema_version")
            return int(cur.fetchone()[0])  # type: ignore[index]

    @property
    def total_changes(self) -> int:
        """Rows inserted, updated or deleted by commit_poll through this store."""
        return self._changes

    def check_integrity(self) -> list[str]:
        """[]: PostgreSQL enforces the foreign keys and guards its pages itself (the
        SQLite store's integrity_check has nothing to do here)."""
        with self._transaction("check integrity") as cur:
            cur.execute("SELECT 1")
        return []

    # --- internals ------------------------------------------------------------------

    @contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        """The one place where psycopg errors become StoreError: what failed, and where."""
        try:
            yield
        except psycopg.Error as e:
            detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise StoreError(f"state store {self._where}: {what} failed: {detail}") from None

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        """The open connection, or a new one when there is none or it broke."""
        if self._closed:
            raise StoreError(f"state store {self._where}: the store is closed")
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            self._conn = None
            if conn is not None:
                conn.close()
            self._committed.clear()  # others may have written meanwhile
            conn = psycopg.connect(**self._connect_args)
            self._conn = conn
        return conn

    @contextmanager
    def _transaction(self, what: str) -> Iterator[psycopg.Cursor[tuple[Any, ...]]]:
        """One transaction under the lock; rolled back on any exception."""
        with self._lock, self._translated(what):
            conn = self._connection()
            with conn.transaction(), conn.cursor() as cur:
                yield cur

    def _migrate(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        with conn.transaction(), conn.cursor() as cur:
            # One replica migrates at a time; the others wait and find it done.
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("", "migrate"),))
            cur.execute(sql.CREATE_VERSION_TABLE)
            cur.execute("SELECT version FROM schema_version")
            row = cur.fetchone()
            version = 0 if row is None else int(row[0])
            if row is None:
                cur.execute("INSERT INTO schema_version (version) VALUES (0)")
            if version > sql.SCHEMA_VERSION:
                raise StoreError(
                    f"state store {self._where}: schema version {version} is newer than "
                    f"this pvewatch knows (up to {sql.SCHEMA_VERSION}); upgrade pvewatch"
                )
            for number in range(version + 1, sql.SCHEMA_VERSION + 1):
                for statement in sql.MIGRATIONS[number - 1]:
                    cur.execute(statement)
                cur.execute("UPDATE schema_version SET version = %s", (number,))

    def _check_leader(self, cur: psycopg.Cursor[tuple[Any, ...]], cluster: str, what: str) -> None:
        if self._fencing is None:
            return
        pid = self._fencing.session_pid(cluster)
        held = False
        if pid is not None:
            cur.execute(sql.LOCK_HELD_BY, {"pid": pid, "key": lock_key(cluster)})
            held = bool(cur.fetchone()[0])  # type: ignore[index]
        if not held:
            raise NotLeader(
                f"state store {self._where}: {what}: refused, this replica does not lead "
                f"cluster {cluster!r} (any more)"
            )

    def _still_led(
        self, cur: psycopg.Cursor[tuple[Any, ...]], clusters: Collection[str]
    ) -> list[str]:
        """Of `clusters`, those whose leader lock the leadership session holds now; ""
        (events of no cluster) stays: it goes with the first cluster (pvewatch.store.leadership)."""
        assert self._fencing is not None
        named = sorted(c for c in clusters if c)
        pid = self._fencing.session_pid(named[0]) if named else None
        if pid is None:
            return []
        cur.execute(sql.LOCKS_HELD_BY, {"pid": pid})
        held = {int(row[0]) for row in cur.fetchall()}
        return [c for c in clusters if not c or lock_key(c) in held]

    def _cached(
        self, cur: psycopg.Cursor[tuple[Any, ...]], cluster: str
    ) -> dict[str, Resource] | None:
        """The resources committed last by this store, if nobody wrote the cluster since."""
        cached = self._committed.pop(cluster, None)
        if cached is None:
            return None
        cur.execute("SELECT xmin::text FROM clusters WHERE name = %s", (cluster,))
        row = cur.fetchone()
        return cached[1] if row is not None and row[0] == cached[0] else None

    def _resources(self, cur: psycopg.Cursor[tuple[Any, ...]], cluster: str) -> dict[str, Resource]:
        cur.execute("SELECT id, data FROM resources WHERE cluster = %s", (cluster,))
        found = (self._read.resource(cluster, rid, data) for rid, data in cur.fetchall())
        return {r.id: r for r in found}  # its own id: a stored one lost its NULs

    def _write_changes(
        self,
        cur: psycopg.Cursor[tuple[Any, ...]],
        cluster: str,
        new: dict[str, Resource],
        old: dict[str, Resource] | None,
    ) -> None:
        """Write the rows that differ from `old` (None: from what is stored)."""
        if old is None:
            old = self._resources(cur, cluster)
        upserts, deletes = changed_resources(cluster, new, old)
        changed = [(c, _text(rid), data) for c, rid, data in upserts]
        removed = [(c, _text(rid)) for c, rid in deletes]
        if changed:
            cur.executemany(sql.UPSERT_RESOURCE, changed)
        if removed:
            cur.executemany(sql.DELETE_RESOURCE, removed)
        self._changes += len(changed) + len(removed)

    def _write_events(
        self,
        cur: psycopg.Cursor[tuple[Any, ...]],
        events: Sequence[Event],
        sinks: Routing,
        now: datetime,
    ) -> list[Event]:
        def recent(event: Event, types: tuple[str, ...]) -> list[Event]:
            cur.execute(sql.LOCK_SIGHTINGS, (event.cluster,))
            since = min(_utc(now), _utc(event.time)) - timedelta(seconds=LOOKBACK_SECS)
            params = {"cluster": event.cluster, "since": since, "types": list(types)}
            cur.execute(sql.SELECT_RECENT, params)
            return [self._read.event(r[0], "an event") for r in cur.fetchall()]

        events, updated = deduplicated(events, recent)
        if updated:
            cur.executemany(
                sql.UPDATE_EVENT_DATA,
                [(to_json(e.to_dict(), f"event {e.id}"), e.id) for e in updated],
            )
        events_out, outbox = event_rows(events, sinks, _utc(now), _utc)
        outbox = [(e, sink, c, _text(rid), due, at) for e, sink, c, rid, due, at in outbox]
        if events_out:
            cur.executemany(sql.INSERT_EVENT, events_out)
        if outbox:
            cur.executemany(sql.INSERT_OUTBOX, outbox)
        return events

    def _items(self, what: str, query: str, params: Any) -> list[OutboxItem]:
        with self._transaction(what) as cur:
            cur.execute(query, params)
            rows = cur.fetchall()
        return [self._read.item(r) for r in rows]

    def _transition(self, outbox_id: int, target: str, query: str, params: tuple[Any, ...]) -> None:
        """Apply a mark_* to a pending row; marking a row again with its state is a no-op."""
        with self._transaction(f"mark outbox row {outbox_id} {target}") as cur:
            self._mark(cur, outbox_id, target, query, params)

    def _mark(
        self,
        cur: psycopg.Cursor[tuple[Any, ...]],
        outbox_id: int,
        target: str,
        query: str,
        params: tuple[Any, ...],
    ) -> None:
        what = f"mark outbox row {outbox_id} {target}"
        cur.execute("SELECT state FROM outbox WHERE outbox_id = %s FOR UPDATE", (outbox_id,))
        if self._read.may_mark(what, cur.fetchone(), target):
            cur.execute(query, (*params, outbox_id))
