"""The store tests run against both stores wherever they are about meaning: the same
tests are the contract that SqliteStore and PostgresStore share (SQLite-only ones, such
as its file handling, open SqliteStore themselves)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pvewatch.config.types import PostgresConfig
from pvewatch.store.postgres import PostgresStore
from pvewatch.store.sqlite import SqliteStore
from tests.pg import empty_tables, fresh_database

AnyStore = SqliteStore | PostgresStore
Opener = Callable[..., AnyStore]


@pytest.fixture(scope="module")
def pg_config() -> Iterator[PostgresConfig]:
    with fresh_database() as config:
        yield config


@pytest.fixture(params=["sqlite", "postgres"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens the test's store (again: the same file or database) with the given options."""
    if request.param == "sqlite":
        return functools.partial(SqliteStore, tmp_path / "state.db")
    config: PostgresConfig = request.getfixturevalue("pg_config")
    empty_tables(config)
    return functools.partial(PostgresStore, config)


@pytest.fixture
def store(open_store: Opener) -> Iterator[AnyStore]:
    with open_store() as s:
        yield s
