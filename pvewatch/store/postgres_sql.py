"""The PostgreSQL schema (migrations) and the statements of pvewatch.store.postgres, as
text: the same tables and meaning as the SQLite store (pvewatch.store.sqlite), with
timestamptz for times, and two tables of its own for the replicas that share it."""

from __future__ import annotations

from typing import Any

from pvewatch.store.base import EventQuery
from pvewatch.store.rows import select_events

# Migration N+1 takes a database from schema version N to N+1, in one transaction.
# Append only: never edit a migration that has been released.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE clusters (
            name text PRIMARY KEY,
            taken_at timestamptz,
            consecutive_failures integer NOT NULL,
            unreachable boolean NOT NULL,
            last_error text,
            quorate boolean)""",
        """CREATE TABLE resources (
            cluster text NOT NULL REFERENCES clusters (name),
            id text NOT NULL,
            data text NOT NULL,
            PRIMARY KEY (cluster, id))""",
        # text, not jsonb: the stored event comes back byte for byte.
        """CREATE TABLE events (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id text NOT NULL UNIQUE,
            cluster text NOT NULL,
            type text NOT NULL,
            time timestamptz NOT NULL,
            created_at timestamptz NOT NULL,
            data text NOT NULL)""",
        "CREATE INDEX events_time ON events (time)",
        "CREATE INDEX events_cluster_time ON events (cluster, time)",
        """CREATE TABLE outbox (
            outbox_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            event_id text NOT NULL REFERENCES events (id),
            sink text NOT NULL CHECK (length(sink) > 0),
            cluster text NOT NULL,
            resource_id text,
            state text NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
            attempts integer NOT NULL CHECK (attempts >= 0),
            next_attempt_at timestamptz NOT NULL,
            last_error text,
            created_at timestamptz NOT NULL,
            delivered_at timestamptz,
            dead_at timestamptz,
            UNIQUE (event_id, sink))""",
        "CREATE INDEX outbox_pending ON outbox (sink, outbox_id) WHERE state = 'pending'",
        """CREATE INDEX outbox_lines ON outbox (sink, cluster, resource_id, outbox_id)
            WHERE state = 'pending'""",
        """CREATE TABLE rule_state (
            cluster text PRIMARY KEY REFERENCES clusters (name),
            data text NOT NULL)""",
        """CREATE TABLE silences (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            match text NOT NULL,
            starts_at timestamptz NOT NULL,
            ends_at timestamptz NOT NULL,
            comment text NOT NULL,
            created_by text,
            created_at timestamptz NOT NULL)""",
        "CREATE INDEX silences_ends_at ON silences (ends_at)",
        # The replicas' heartbeats (server time): a replica is live while its leadership
        # session (backend_pid) exists and it was seen recently.
        """CREATE TABLE replicas (
            id text PRIMARY KEY,
            backend_pid integer NOT NULL,
            started_at timestamptz NOT NULL,
            last_seen timestamptz NOT NULL)""",
        # Who took each cluster, and when (for `pvewatch status`; the lock decides).
        """CREATE TABLE leaders (
            cluster text PRIMARY KEY,
            replica text NOT NULL,
            since timestamptz NOT NULL)""",
    ),
    (
        # The health checks (pvewatch.checking): each one's memory (open and pending
        # conditions, JSON) and its status for `check_states`, written with its events.
        """CREATE TABLE check_state (
            cluster text NOT NULL,
            name text NOT NULL,
            status text NOT NULL,
            detail text,
            last_run timestamptz,
            open_count integer NOT NULL,
            data text NOT NULL,
            PRIMARY KEY (cluster, name))""",
        # The read API and the status page (pvewatch.http): the newest events of one
        # cluster, and each sink's dead rows, without a scan of everything stored. IF NOT
        # EXISTS: harmless, and this migration may be renumbered when others land.
        "CREATE INDEX IF NOT EXISTS events_cluster_seq ON events (cluster, seq)",
        "CREATE INDEX IF NOT EXISTS outbox_dead ON outbox (sink, outbox_id) WHERE state = 'dead'",
        # What a sink keeps between restarts, by key (alertmanager: the alerts it pushed
        # and has not resolved, so they are pushed again after a restart).
        """CREATE TABLE sink_state (
            sink text NOT NULL,
            key text NOT NULL,
            data text NOT NULL,
            PRIMARY KEY (sink, key))""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

CREATE_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)"

UPSERT_CLUSTER = """
    INSERT INTO clusters (name, taken_at, consecutive_failures, unreachable, last_error, quorate)
    VALUES (%s, %s, %s, %s, %s, %s)
    ON CONFLICT (name) DO UPDATE SET
        quorate = CASE WHEN excluded.taken_at IS NULL THEN clusters.quorate
                       ELSE excluded.quorate END,
        taken_at = coalesce(excluded.taken_at, clusters.taken_at),
        consecutive_failures = excluded.consecutive_failures,
        unreachable = excluded.unreachable,
        last_error = excluded.last_error
    RETURNING xmin::text"""
UPSERT_RULE_STATE = """
    INSERT INTO rule_state (cluster, data) VALUES (%s, %s)
    ON CONFLICT (cluster) DO UPDATE SET data = excluded.data"""
UPSERT_RESOURCE = """
    INSERT INTO resources (cluster, id, data) VALUES (%s, %s, %s)
    ON CONFLICT (cluster, id) DO UPDATE SET data = excluded.data"""
DELETE_RESOURCE = "DELETE FROM resources WHERE cluster = %s AND id = %s"
INSERT_EVENT = """
    INSERT INTO events (id, cluster, type, time, created_at, data) VALUES (%s, %s, %s, %s, %s, %s)
    ON CONFLICT (id) DO NOTHING"""
INSERT_OUTBOX = """
    INSERT INTO outbox (event_id, sink, cluster, resource_id, state, attempts,
                        next_attempt_at, created_at)
    VALUES (%s, %s, %s, %s, 'pending', 0, %s, %s)
    ON CONFLICT (event_id, sink) DO NOTHING"""
SELECT_DUE = """
    SELECT o.outbox_id, o.sink, e.data, o.attempts, o.next_attempt_at, o.state,
        o.last_error, o.cluster, o.resource_id, o.created_at
    FROM outbox AS o JOIN events AS e ON e.id = o.event_id
    WHERE o.sink = %s AND o.state = 'pending' ORDER BY o.outbox_id LIMIT %s"""
# The first pending row of each line (cluster, resource) of a sink, oldest line first;
# `clusters` NULL: of every cluster. DISTINCT ON walks the outbox_lines index once.
SELECT_HEADS = """
    SELECT o.outbox_id, o.sink, e.data, o.attempts, o.next_attempt_at, o.state,
        o.last_error, o.cluster, o.resource_id, o.created_at
    FROM (
        SELECT DISTINCT ON (cluster, resource_id) outbox_id FROM outbox
        WHERE sink = %(sink)s AND state = 'pending'
          AND (%(clusters)s::text[] IS NULL OR cluster = ANY(%(clusters)s::text[]))
        ORDER BY cluster, resource_id, outbox_id) AS h
    JOIN outbox AS o ON o.outbox_id = h.outbox_id
    JOIN events AS e ON e.id = o.event_id
    WHERE o.outbox_id > %(after)s
    ORDER BY o.outbox_id LIMIT %(limit)s"""
SELECT_DELIVERIES = """
    SELECT o.outbox_id, o.sink, e.data, o.attempts, o.next_attempt_at, o.state,
        o.last_error, o.cluster, o.resource_id, o.created_at
    FROM outbox AS o JOIN events AS e ON e.id = o.event_id
    WHERE (%(sink)s::text IS NULL OR o.sink = %(sink)s)
      AND (o.state = %(state)s OR (%(state)s::text IS NULL AND o.state != 'delivered'))
    ORDER BY o.outbox_id LIMIT %(limit)s"""
REQUEUE = """
    UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = %(now)s,
        created_at = %(now)s, last_error = NULL, delivered_at = NULL, dead_at = NULL
    WHERE sink = ANY(%(sinks)s::text[])
      AND (event_id = %(event)s OR (%(event)s::text IS NULL AND state = 'dead'))"""
MARK_DELIVERED = "UPDATE outbox SET state = 'delivered', delivered_at = %s WHERE outbox_id = %s"
MARK_RETRY = """
    UPDATE outbox SET attempts = %s, next_attempt_at = %s, last_error = %s WHERE outbox_id = %s"""
MARK_DEAD = """
    UPDATE outbox SET state = 'dead', attempts = %s, last_error = %s, dead_at = %s
    WHERE outbox_id = %s"""
SELECT_EVENTS = """
    SELECT data FROM events
    WHERE (%(since)s::timestamptz IS NULL OR time >= %(since)s)
      AND (%(pattern)s::text IS NULL OR type ~ %(pattern)s)
      AND (%(cluster)s::text IS NULL OR cluster = %(cluster)s)
    ORDER BY time DESC, seq DESC LIMIT %(limit)s"""
# The events of a cluster of some types recorded since a time (pvewatch.duplicates), once
# this transaction holds the cluster's lock for them: two sightings recorded at once see
# each other.
LOCK_SIGHTINGS = "SELECT pg_advisory_xact_lock(hashtext('pvewatch-sightings:' || %s))"
SELECT_RECENT = """
    SELECT data FROM events
    WHERE cluster = %(cluster)s AND time >= %(since)s AND type = ANY(%(types)s)
    ORDER BY time, seq"""
UPDATE_EVENT_DATA = "UPDATE events SET data = %s WHERE id = %s"
PRUNE_OUTBOX = """
    DELETE FROM outbox WHERE state != 'pending' AND (
        coalesce(delivered_at, dead_at, created_at) < %(cutoff)s
        OR event_id IN (
            SELECT e.id FROM events AS e WHERE e.time < %(cutoff)s AND NOT EXISTS (
                SELECT 1 FROM outbox AS p WHERE p.event_id = e.id AND p.state = 'pending')))"""
PRUNE_EVENTS = """
    DELETE FROM events WHERE time < %(cutoff)s
    AND NOT EXISTS (SELECT 1 FROM outbox AS o WHERE o.event_id = events.id)"""
PRUNE_SILENCES = "DELETE FROM silences WHERE ends_at < %(cutoff)s"
INSERT_SILENCE = """
    INSERT INTO silences (match, starts_at, ends_at, comment, created_by, created_at)
    VALUES (%s, %s, %s, %s, %s, %s) RETURNING id"""
SELECT_SILENCES = """
    SELECT id, match, starts_at, ends_at, comment, created_by FROM silences
    WHERE %(now)s::timestamptz IS NULL OR ends_at > %(now)s ORDER BY id"""
# The lock of a cluster held by a session: bigint advisory locks show their key split in
# two (classid: the high 32 bits, objid: the low ones) with objsubid 1.
LOCK_HELD_BY = """
    SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
        AND pid = %(pid)s AND objsubid = 1
        AND classid = ((%(key)s::bigint >> 32) & 4294967295)::bigint::oid
        AND objid = (%(key)s::bigint & 4294967295)::bigint::oid)"""
# The bigint advisory locks a session holds, as keys.
LOCKS_HELD_BY = """
    SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks
    WHERE locktype = 'advisory' AND granted AND pid = %(pid)s AND objsubid = 1"""
# Who holds which cluster lock, and since when (`pvewatch status`).
SELECT_STATUS = """
    SELECT c.name, c.taken_at, c.consecutive_failures, c.unreachable, c.last_error,
        l.replica, l.since, r.backend_pid
    FROM clusters AS c
    LEFT JOIN leaders AS l ON l.cluster = c.name
    LEFT JOIN replicas AS r ON r.id = l.replica
    ORDER BY c.name"""

# The read API (pvewatch.http.view).
DELIVERY_STATES = """
    SELECT event_id, sink, state, attempts, last_error FROM outbox
    WHERE event_id = ANY(%s::text[]) ORDER BY outbox_id"""
QUEUE_LAST_ERROR = """
    SELECT outbox_id, last_error FROM outbox
    WHERE sink = %s AND state = %s AND last_error IS NOT NULL
    ORDER BY outbox_id DESC LIMIT 1"""
RESOURCE_COUNTS = """
    SELECT cluster, data::json->>'type', data::json->>'status', count(*)
    FROM resources GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""


def browse(query: EventQuery) -> tuple[str, dict[str, Any]]:
    """The statement of `PostgresStore.browse` and its parameters."""
    pattern = None if query.type_pattern is None else glob_to_regex(query.type_pattern)
    conditions = [
        ("seq < {}", "before", query.before),
        ("time >= {}", "since", query.since),
        ("time < {}", "until", query.until),
        ("type ~ {}", "pattern", pattern),
        ("cluster = {}", "cluster", query.cluster),
        ("id = {}", "id", query.event_id),
        ("data::json->>'severity' = {}", "severity", query.severity),
        ("data::json->'resource'->>'id' = {}", "resource", query.resource),
    ]
    return select_events(conditions, lambda name: f"%({name})s", query.limit)


def glob_to_regex(pattern: str) -> str:
    """A SQLite GLOB (`*`, `?`, `[...]`, `[^...]`; case-sensitive) as an anchored POSIX
    regular expression, so that both stores filter event types alike."""
    out = ["^"]
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        end = pattern.find("]", i + 2) if ch == "[" else -1
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif end != -1:
            body = pattern[i + 1 : end]
            negate = body.startswith("^")
            body = body[1:] if negate else body
            escaped = body.replace("\\", "\\\\")
            out.append(("[^" if negate else "[") + escaped + "]")
            i = end
        else:
            out.append("\\" + ch if not ch.isalnum() else ch)
        i += 1
    return "".join(out) + "$"


UPSERT_CHECK = """
    INSERT INTO check_state (cluster, name, status, detail, last_run, open_count, data)
    VALUES (%s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (cluster, name) DO UPDATE SET status = excluded.status,
        detail = excluded.detail, last_run = excluded.last_run,
        open_count = excluded.open_count, data = excluded.data"""
SELECT_CHECK = "SELECT data FROM check_state WHERE cluster = %s AND name = %s"
SELECT_CHECKS = """
    SELECT name, status, last_run, open_count, detail FROM check_state
    WHERE cluster = %s ORDER BY name"""
