"""A real PostgreSQL server for the tests: the server of $PVEWATCH_TEST_POSTGRES_DSN
(default postgresql://postgres@127.0.0.1:5432/postgres, trust auth; .ci/postgres.sh
starts one), a fresh database per test module, dropped after. When no server answers the
tests skip saying why, or fail under CI=true (tests.need); never a mock."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from pvewatch.config.types import PostgresConfig
from pvewatch.secret import Secret
from tests.need import need

ADMIN_DSN = os.environ.get(
    "PVEWATCH_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TABLES = (
    "clusters, resources, events, outbox, rule_state, silences, replicas, leaders, check_state, "
    "sink_state"
)


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=3)


def unreachable() -> str | None:
    """Why no test server can be used, or None when one answers."""
    try:
        with _admin() as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as e:
        return f"no PostgreSQL server at $PVEWATCH_TEST_POSTGRES_DSN ({ADMIN_DSN}): {e}"
    return None


def database_dsn(name: str) -> str:
    base, _, _ = ADMIN_DSN.rpartition("/")
    return f"{base}/{name}"


@contextmanager
def fresh_database() -> Iterator[PostgresConfig]:
    """A new empty database for the duration; `need` a server (tests.need)."""
    reason = unreachable()
    if reason is not None:
        need(reason)
    name = f"pvewatch_test_{secrets.token_hex(6)}"
    with _admin() as conn:
        conn.execute(f"CREATE DATABASE {name}")  # name: [a-z0-9_] only
    try:
        yield PostgresConfig(dsn=Secret(database_dsn(name)), leader_check_secs=0.2)
    finally:
        with _admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def empty_tables(config: PostgresConfig) -> None:
    """What the previous test of the module left, gone (the schema stays)."""
    assert config.dsn is not None
    with psycopg.connect(config.dsn.reveal(), autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('outbox') IS NOT NULL").fetchone()
        if exists and exists[0]:
            conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")


def execute(
    config: PostgresConfig, statement: str, params: tuple[object, ...] = ()
) -> list[tuple[object, ...]]:
    """One statement in the test database (autocommit); its rows, if any."""
    assert config.dsn is not None
    with psycopg.connect(config.dsn.reveal(), autocommit=True) as conn:
        cur = conn.execute(statement.encode(), params)
        return list(cur.fetchall()) if cur.description else []


def terminate(application_name: str) -> int:
    """Close every connection of `application_name` from the server's side (what a
    network cut between that client and the server ends in), waiting until they are
    gone (and their locks with them); how many there were."""
    with _admin() as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
            " WHERE application_name = %s",
            (application_name,),
        ).fetchall()
    return len(rows)
