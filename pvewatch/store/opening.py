"""The store a config asks for, and the leadership that goes with it: SQLite and one
replica leading every cluster (the default, nothing to set up), or PostgreSQL and
replicas sharing the clusters through advisory locks. psycopg is an optional dependency:
it is imported only when a config asks for PostgreSQL."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

from pvewatch.config.types import PostgresConfig, StoreConfig
from pvewatch.errors import StoreError
from pvewatch.store.base import Fencing, Store
from pvewatch.store.leadership import Leadership, SoleLeader
from pvewatch.store.sqlite import SqliteStore


def open_store(
    config: StoreConfig, *, fencing: Fencing | None = None, replica_id: str | None = None
) -> Store:
    """Open (and migrate) the configured store. `fencing`: PostgreSQL commits only while
    it says this replica leads the cluster."""
    if config.postgres is None:
        try:
            config.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # said like the store's own errors: a message, not a traceback
            where = f"state store {config.path}"
            raise StoreError(f"{where}: cannot create its directory: {e.strerror or e}") from None
        _require_writable(config.path)
        return SqliteStore(config.path)
    _require_psycopg(config.postgres)
    from pvewatch.store.pg_leader import application_name
    from pvewatch.store.postgres import PostgresStore

    name = application_name(replica_id or replica(config))
    return PostgresStore(config.postgres, application_name=name, fencing=fencing)


_EFFECTIVE = os.access in os.supports_effective_ids


def _require_writable(path: Path) -> None:
    """SQLite only says "unable to open database file": say which directory or file this
    process cannot write, as whom, and whose it is (a bind-mounted state directory is
    often root's while the image runs as uid 10001)."""
    for target, needs in ((path.parent, os.W_OK | os.X_OK), (path, os.W_OK)):
        try:
            if target == path and not path.exists():
                continue
            if os.access(target, needs, effective_ids=_EFFECTIVE):
                continue
            info = os.stat(target)
            read_only = bool(os.statvfs(target).f_flag & os.ST_RDONLY)
        except OSError:
            continue  # SQLite's own error will say it
        uid, gid = os.geteuid(), os.getegid()
        if read_only:
            raise StoreError(f"state store {path}: {target} is on a read-only filesystem")
        owner = f"owned by {info.st_uid}:{info.st_gid}, {stat.filemode(info.st_mode)}"
        raise StoreError(
            f"state store {path}: {target} is not writable by uid {uid} (gid {gid}), which "
            f"pvewatch runs as ({owner}); give it to uid {uid}, e.g. `chown -R {uid}:{gid}` "
            "on it (or on the host directory mounted there)"
        )


def replica(config: StoreConfig) -> str:
    """This replica's id: `replica_id` from the config, else hostname:pid."""
    if config.postgres is not None and config.postgres.replica_id:
        return config.postgres.replica_id
    from pvewatch.store.pg_leader import default_replica_id

    return default_replica_id()


def open_state(
    config: StoreConfig,
    clusters: Sequence[str],
    *,
    on_change: Callable[[str, bool], None],
    on_database: Callable[[bool, str], None],
    busy: Callable[[str], bool],
    logger: logging.Logger,
) -> tuple[Store, Leadership]:
    """The store and the leadership of this replica, the store fenced by it."""
    if config.postgres is None:
        return open_store(config), SoleLeader()
    _require_psycopg(config.postgres)
    from pvewatch.store.pg_leader import PgLeadership

    leadership = PgLeadership(
        config.postgres,
        clusters,
        replica_id=replica(config),
        on_change=on_change,
        on_database=on_database,
        busy=busy,
        logger=logger,
    )
    return open_store(config, fencing=leadership, replica_id=leadership.replica_id), leadership


def _require_psycopg(config: PostgresConfig) -> None:
    try:
        import pvewatch.store.postgres  # noqa: F401
    except ImportError as e:
        raise StoreError(
            f"state store {config.where()}: PostgreSQL needs psycopg 3, which is not "
            f"installed ({e}); install pvewatch with the extra: pip install 'pvewatch[postgres]'"
        ) from None


__all__ = ["open_state", "open_store", "replica"]
