"""The SQLite schema (migrations) and the statements of pvewatch.store.sqlite, as text: the
same tables and meaning as the PostgreSQL store (pvewatch.store.postgres_sql), with times
as UTC epoch seconds (REAL)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pvewatch.store.base import EventQuery
from pvewatch.store.rows import select_events

# Migration N+1 takes a database from user_version N to N+1, in one transaction.
# Append only: never edit a migration that has been released.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE clusters (
            name TEXT PRIMARY KEY,
            taken_at REAL,
            consecutive_failures INTEGER NOT NULL,
            unreachable INTEGER NOT NULL,
            last_error TEXT)""",
        """CREATE TABLE resources (
            cluster TEXT NOT NULL REFERENCES clusters (name),
            id TEXT NOT NULL,
            data TEXT NOT NULL,
            PRIMARY KEY (cluster, id)) WITHOUT ROWID""",
        # seq, not the implicit rowid, orders events: VACUUM may renumber rowids.
        """CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            cluster TEXT NOT NULL,
            type TEXT NOT NULL,
            time REAL NOT NULL,
            created_at REAL NOT NULL,
            data TEXT NOT NULL)""",
        "CREATE INDEX events_time ON events (time)",
        "CREATE INDEX events_cluster_time ON events (cluster, time)",
        # AUTOINCREMENT: an outbox_id is never reused, so id order stays commit order.
        """CREATE TABLE outbox (
            outbox_id INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id TEXT NOT NULL REFERENCES events (id),
            sink TEXT NOT NULL CHECK (length(sink) > 0),
            cluster TEXT NOT NULL,
            resource_id TEXT,
            state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
            attempts INTEGER NOT NULL CHECK (attempts >= 0),
            next_attempt_at REAL NOT NULL,
            last_error TEXT,
            created_at REAL NOT NULL,
            delivered_at REAL,
            dead_at REAL,
            UNIQUE (event_id, sink))""",
        "CREATE INDEX outbox_pending ON outbox (sink, outbox_id) WHERE state = 'pending'",
    ),
    (
        # NULL: quorum unknown (no Sys.Audit on /, pvedaemon down).
        "ALTER TABLE clusters ADD COLUMN quorate INTEGER",
        # What the rules remember between polls (held transitions, open conditions, reported
        # tasks), one JSON object per cluster, written in the poll's transaction.
        """CREATE TABLE rule_state (
            cluster TEXT PRIMARY KEY REFERENCES clusters (name),
            data TEXT NOT NULL)""",
    ),
    (
        # Silences (`pvewatch silence add`): events matching `match` while the silence is
        # active are recorded and sent nowhere. id is what `silence remove` takes.
        """CREATE TABLE silences (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            match TEXT NOT NULL,
            starts_at REAL NOT NULL,
            ends_at REAL NOT NULL,
            comment TEXT NOT NULL,
            created_by TEXT,
            created_at REAL NOT NULL)""",
        "CREATE INDEX silences_ends_at ON silences (ends_at)",
    ),
    (
        # The lines of a sink's queue (one per resource), for `heads`: finding the first
        # pending row of a line is one index probe.
        """CREATE INDEX outbox_lines ON outbox (sink, cluster, resource_id, outbox_id)
            WHERE state = 'pending'""",
    ),
    (
        # The health checks (pvewatch.checking): each one's memory (open and pending
        # conditions, JSON) and its status for `check_states`, written with its events.
        """CREATE TABLE check_state (
            cluster TEXT NOT NULL,
            name TEXT NOT NULL,
            status TEXT NOT NULL,
            detail TEXT,
            last_run REAL,
            open_count INTEGER NOT NULL,
            data TEXT NOT NULL,
            PRIMARY KEY (cluster, name))""",
        # The read API and the status page (pvewatch.http): the newest events of one
        # cluster, and each sink's dead rows, without a scan of everything stored. IF NOT
        # EXISTS: harmless, and this migration may be renumbered when others land.
        "CREATE INDEX IF NOT EXISTS events_cluster_seq ON events (cluster, seq)",
        "CREATE INDEX IF NOT EXISTS outbox_dead ON outbox (sink, outbox_id) WHERE state = 'dead'",
        # What a sink keeps between restarts, by key (alertmanager: the alerts it pushed
        # and has not resolved, so they are pushed again after a restart).
        """CREATE TABLE sink_state (
            sink TEXT NOT NULL,
            key TEXT NOT NULL,
            data TEXT NOT NULL,
            PRIMARY KEY (sink, key)) WITHOUT ROWID""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


UPSERT_CLUSTER = """
    INSERT INTO clusters (name, taken_at, consecutive_failures, unreachable, last_error, quorate)
    VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET
        quorate = CASE WHEN excluded.taken_at IS NULL THEN clusters.quorate
                       ELSE excluded.quorate END,
        taken_at = coalesce(excluded.taken_at, clusters.taken_at),
        consecutive_failures = excluded.consecutive_failures,
        unreachable = excluded.unreachable,
        last_error = excluded.last_error"""
UPSERT_RULE_STATE = """
    INSERT INTO rule_state (cluster, data) VALUES (?, ?)
    ON CONFLICT (cluster) DO UPDATE SET data = excluded.data"""
SELECT_SINK_STATE = "SELECT key, data FROM sink_state WHERE sink = ? ORDER BY key"
UPSERT_SINK_STATE = """
    INSERT INTO sink_state (sink, key, data) VALUES (?, ?, ?)
    ON CONFLICT (sink, key) DO UPDATE SET data = excluded.data"""
DELETE_SINK_STATE = "DELETE FROM sink_state WHERE sink = ? AND key = ?"
UPSERT_RESOURCE = """
    INSERT INTO resources (cluster, id, data) VALUES (?, ?, ?)
    ON CONFLICT (cluster, id) DO UPDATE SET data = excluded.data"""
INSERT_EVENT = """
    INSERT INTO events (id, cluster, type, time, created_at, data) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO NOTHING"""
INSERT_OUTBOX = """
    INSERT INTO outbox (event_id, sink, cluster, resource_id, state, attempts,
                        next_attempt_at, created_at)
    VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)
    ON CONFLICT (event_id, sink) DO NOTHING"""
SELECT_DUE = """
    SELECT o.outbox_id, o.sink, e.data, o.attempts, o.next_attempt_at, o.state, o.last_error,
        o.cluster, o.resource_id, o.created_at
    FROM outbox AS o JOIN events AS e ON e.id = o.event_id
    WHERE o.sink = ? AND o.state = 'pending'
    ORDER BY o.outbox_id LIMIT ?"""
# The first pending row of each line (cluster, resource) of a sink, oldest line first.
SELECT_HEADS = """
    SELECT o.outbox_id, o.sink, e.data, o.attempts, o.next_attempt_at, o.state,
        o.last_error, o.cluster, o.resource_id, o.created_at
    FROM outbox AS o JOIN events AS e ON e.id = o.event_id
    WHERE o.sink = :sink AND o.state = 'pending' AND o.outbox_id > :after
      AND (:clusters IS NULL OR o.cluster IN (SELECT value FROM json_each(:clusters)))
      AND NOT EXISTS (
        SELECT 1 FROM outbox AS p
        WHERE p.sink = :sink AND p.state = 'pending' AND p.cluster = o.cluster
          AND p.resource_id IS o.resource_id AND p.outbox_id < o.outbox_id)
    ORDER BY o.outbox_id LIMIT :limit"""
# state NULL: every row not yet delivered (pending and dead).
SELECT_DELIVERIES = """
    SELECT o.outbox_id, o.sink, e.data, o.attempts, o.next_attempt_at, o.state,
        o.last_error, o.cluster, o.resource_id, o.created_at
    FROM outbox AS o JOIN events AS e ON e.id = o.event_id
    WHERE (:sink IS NULL OR o.sink = :sink)
      AND (o.state = :state OR (:state IS NULL AND o.state != 'delivered'))
    ORDER BY o.outbox_id LIMIT :limit"""
# event NULL: every dead row of the sinks; else that event's rows, whatever their state.
REQUEUE = """
    UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = :now,
        created_at = :now, last_error = NULL, delivered_at = NULL, dead_at = NULL
    WHERE sink IN (SELECT value FROM json_each(:sinks))
      AND (event_id = :event OR (:event IS NULL AND state = 'dead'))"""
MARK_DELIVERED = "UPDATE outbox SET state = 'delivered', delivered_at = ? WHERE outbox_id = ?"
MARK_RETRY = """
    UPDATE outbox SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE outbox_id = ?"""
MARK_DEAD = """
    UPDATE outbox SET state = 'dead', attempts = ?, last_error = ?, dead_at = ?
    WHERE outbox_id = ?"""
SELECT_EVENTS = """
    SELECT data FROM events
    WHERE (:since IS NULL OR time >= :since)
      AND (:pattern IS NULL OR type GLOB :pattern)
      AND (:cluster IS NULL OR cluster = :cluster)
    ORDER BY time DESC, seq DESC LIMIT :limit"""
# The events of a cluster of some types recorded since a time (pvewatch.duplicates).
SELECT_RECENT = """
    SELECT data FROM events
    WHERE cluster = :cluster AND time >= :since
      AND type IN (SELECT value FROM json_each(:types))
    ORDER BY time, seq"""
UPDATE_EVENT_DATA = "UPDATE events SET data = ? WHERE id = ?"
# An expired event goes only when no sink still has it pending; finished outbox rows go
# when they finished before the cutoff or when their event goes.
PRUNE_OUTBOX = """
    DELETE FROM outbox WHERE state != 'pending' AND (
        coalesce(delivered_at, dead_at, created_at) < :cutoff
        OR event_id IN (
            SELECT e.id FROM events AS e WHERE e.time < :cutoff AND NOT EXISTS (
                SELECT 1 FROM outbox AS p WHERE p.event_id = e.id AND p.state = 'pending')))"""
PRUNE_EVENTS = """
    DELETE FROM events WHERE time < :cutoff
    AND NOT EXISTS (SELECT 1 FROM outbox AS o WHERE o.event_id = events.id)"""
INSERT_SILENCE = """
    INSERT INTO silences (match, starts_at, ends_at, comment, created_by, created_at)
    VALUES (?, ?, ?, ?, ?, ?)"""
SELECT_SILENCES = """
    SELECT id, match, starts_at, ends_at, comment, created_by FROM silences
    WHERE :now IS NULL OR ends_at > :now ORDER BY id"""
SELECT_CLUSTER = """
SELECT taken_at, consecutive_failures, unreachable, last_error, quorate
FROM clusters WHERE name = ?"""
SELECT_RULE_STATE = "SELECT data FROM rule_state WHERE cluster = ?"
SELECT_CLUSTER_NAMES = "SELECT name FROM clusters ORDER BY name"
SELECT_STATUS = """
SELECT name, taken_at, consecutive_failures, unreachable, last_error
FROM clusters ORDER BY name"""
COUNT_OUTBOX = "SELECT count(*) FROM outbox WHERE sink = ? AND state = ?"
DELETE_SILENCE = "DELETE FROM silences WHERE id = ?"
PRUNE_SILENCES = "DELETE FROM silences WHERE ends_at < :cutoff"
UPSERT_CHECK = """
    INSERT INTO check_state (cluster, name, status, detail, last_run, open_count, data)
    VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (cluster, name) DO UPDATE SET status = excluded.status,
        detail = excluded.detail, last_run = excluded.last_run,
        open_count = excluded.open_count, data = excluded.data"""
SELECT_CHECK = "SELECT data FROM check_state WHERE cluster = ? AND name = ?"
SELECT_CHECKS = """
    SELECT name, status, last_run, open_count, detail FROM check_state
    WHERE cluster = ? ORDER BY name"""

# The read API (pvewatch.http.view).
DELIVERY_STATES = """
    SELECT event_id, sink, state, attempts, last_error FROM outbox
    WHERE event_id IN (SELECT value FROM json_each(?)) ORDER BY outbox_id"""
QUEUE_LAST_ERROR = """
    SELECT outbox_id, last_error FROM outbox
    WHERE sink = ? AND state = ? AND last_error IS NOT NULL ORDER BY outbox_id DESC LIMIT 1"""
RESOURCE_COUNTS = """
    SELECT cluster, json_extract(data, '$.type'), json_extract(data, '$.status'), count(*)
    FROM resources GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""


def browse(query: EventQuery, stamp: Callable[[datetime], float]) -> tuple[str, dict[str, Any]]:
    """The statement of `SqliteStore.browse` and its parameters."""
    since = None if query.since is None else stamp(query.since)
    until = None if query.until is None else stamp(query.until)
    conditions = [
        ("seq < {}", "before", query.before),
        ("time >= {}", "since", since),
        ("time < {}", "until", until),
        ("type GLOB {}", "pattern", query.type_pattern),
        ("cluster = {}", "cluster", query.cluster),
        ("id = {}", "id", query.event_id),
        ("json_extract(data, '$.severity') = {}", "severity", query.severity),
        ("json_extract(data, '$.resource.id') = {}", "resource", query.resource),
    ]
    return select_events(conditions, lambda name: f":{name}", query.limit)
