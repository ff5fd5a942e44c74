"""The stores: snapshots, health, atomic polls, schema versions, speed (SQLite-only
file matters at the end)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvewatch.config.types import PostgresConfig
from pvewatch.errors import StoreError
from pvewatch.model import Event, Resource, Snapshot, SourceHealth
from pvewatch.store import postgres_sql
from pvewatch.store.postgres import PostgresStore
from pvewatch.store.sqlite import SCHEMA_VERSION, SqliteStore
from tests.pg import empty_tables, execute

from .builders import captured_resources, event, resources, snapshot
from .conftest import AnyStore, Opener

SINKS = ("webhook", "log")
HEALTHY = SourceHealth()
FAILING = SourceHealth(consecutive_failures=1, last_error="unreachable")


def poll(
    store: AnyStore,
    snap: Snapshot | None,
    events: Sequence[Event] = (),
    *,
    sinks: Sequence[str] = SINKS,
    health: SourceHealth = HEALTHY,
) -> None:
    cluster = snap.cluster if snap else "prod"
    store.commit_poll(cluster, snapshot=snap, events=events, sinks=sinks, health=health)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


def test_unknown_cluster_is_a_first_start(store: AnyStore) -> None:
    assert store.load("prod") == (None, SourceHealth())
    assert store.clusters() == []


@pytest.mark.parametrize(
    "fixture",
    ["dougiteixeira-pve8-cluster-resources.json", "pruebalucas-pve922-cluster-resources.json"],
)
def test_captured_snapshot_and_health_survive_a_reopen(open_store: Opener, fixture: str) -> None:
    snap = snapshot(captured_resources(fixture), n=1)
    health = SourceHealth(consecutive_failures=2, unreachable=True, last_error="timeout")
    with open_store() as store:
        poll(store, snap, [event(1)], health=health)
    with open_store() as store:
        assert store.load("prod") == (snap, health)
        assert store.events() == [event(1)]
        assert [store.pending_count(s) for s in SINKS] == [1, 1]
        assert store.clusters() == ["prod"]


def test_only_changed_rows_are_written(store: AnyStore) -> None:
    res = resources(100)
    poll(store, snapshot(res))
    res["qemu/1"] = replace(res["qemu/1"], status="stopped")  # changed
    del res["qemu/2"]  # removed
    res["qemu/500"] = replace(res["qemu/3"], id="qemu/500", vmid=500)  # added
    before = store.total_changes
    poll(store, snapshot(res, n=1))
    # Three resource rows plus the cluster's row (taken_at, health).
    assert store.total_changes - before == 4
    assert store.load("prod")[0] == snapshot(res, n=1)

    before = store.total_changes
    poll(store, snapshot(dict(res), n=2))
    assert store.total_changes - before == 1


def test_failed_poll_keeps_the_snapshot_and_writes_health_and_events(store: AnyStore) -> None:
    snap = snapshot(resources(3))
    poll(store, snap)
    down = SourceHealth(consecutive_failures=3, unreachable=True, last_error="unreachable")
    lost = replace(event(1), type="source.unreachable", resource=None, change=None)
    poll(store, None, [lost], health=down)
    assert store.load("prod") == (snap, down)
    assert store.events() == [lost]
    assert store.due("log", snap.taken_at)[0].event == lost


def test_failed_first_poll_has_health_but_no_snapshot(store: AnyStore) -> None:
    poll(store, None, health=FAILING)
    assert store.load("prod") == (None, FAILING)


def _assert_only_the_first_poll_is_stored(open_store: Opener) -> None:
    with open_store() as fresh:
        assert fresh.load("prod") == (snapshot(resources(5)), HEALTHY)
        assert fresh.events() == [event(1)]
        assert [fresh.pending_count(s) for s in SINKS] == [1, 1]


def test_a_poll_failing_halfway_stores_nothing_of_it(store: AnyStore, open_store: Opener) -> None:
    poll(store, snapshot(resources(5)), [event(1)])
    # The resources are written before the second event turns out unstorable.
    bad = replace(event(3), details={"oops": object()})  # type: ignore[dict-item]
    with pytest.raises(StoreError, match="evt_prod_3"):
        poll(store, snapshot(resources(9, status="off"), n=2), [event(2), bad], health=FAILING)
    _assert_only_the_first_poll_is_stored(open_store)
    assert store.load("prod") == (snapshot(resources(5)), HEALTHY)


def test_a_constraint_violation_rolls_back_the_whole_poll(
    store: AnyStore, open_store: Opener
) -> None:
    poll(store, snapshot(resources(5)), [event(1)])
    with pytest.raises(
        StoreError, match=r"(state\.db|/pvewatch_test_).*commit poll of cluster 'prod'"
    ):
        poll(store, snapshot(resources(9, status="off"), n=2), [event(2)], sinks=["log", ""])
    _assert_only_the_first_poll_is_stored(open_store)
    # The rolled-back snapshot must not have reached the cache either: committing the
    # first snapshot again has to leave the table as it was.
    poll(store, snapshot(resources(5)))
    _assert_only_the_first_poll_is_stored(open_store)


def test_a_known_event_id_is_not_stored_twice(store: AnyStore) -> None:
    poll(store, None, [event(1)])
    poll(store, None, [event(1), event(2)])
    assert store.events() == [event(1), event(2)]
    assert [len(store.due(s, event(1).time)) for s in SINKS] == [2, 2]


def test_a_write_by_another_connection_is_not_hidden_by_the_cache(open_store: Opener) -> None:
    a, b = resources(4), resources(4, status="stopped")
    with open_store() as one, open_store() as other:
        poll(one, snapshot(a))
        poll(other, snapshot(b))
        poll(one, snapshot(a))
    with open_store() as fresh:
        assert fresh.load("prod")[0] == snapshot(a)


_resource = st.builds(
    Resource,
    id=st.sampled_from([f"qemu/{i}" for i in range(8)]),
    type=st.just("qemu"),
    status=st.sampled_from(["running", "stopped", None]),
    node=st.sampled_from(["pve1", "pve2"]),
    tags=st.lists(st.sampled_from(["a", "b", "ünï"]), max_size=2).map(tuple),
    attrs=st.dictionaries(st.sampled_from(["x", "y"]), st.integers() | st.text(max_size=3)),
)
# Epoch seconds in a float keep microseconds exact well past 2100.
_times = st.datetimes(datetime(1971, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(polls=st.lists(st.lists(_resource, max_size=6), min_size=1, max_size=5), stamp=_times)
def test_load_returns_the_last_committed_snapshot(
    open_store: Opener, polls: list[list[Resource]], stamp: datetime
) -> None:
    with open_store() as store:
        for rows in polls:
            snap = Snapshot("prod", {r.id: r for r in rows}, stamp)
            poll(store, snap)
            with open_store() as fresh:
                assert fresh.load("prod") == (snap, HEALTHY)


def test_a_newer_schema_is_refused_by_postgres(pg_config: PostgresConfig) -> None:
    empty_tables(pg_config)
    with PostgresStore(pg_config) as store:
        assert store.schema_version == postgres_sql.SCHEMA_VERSION
    newer = postgres_sql.SCHEMA_VERSION + 7
    execute(pg_config, "UPDATE schema_version SET version = %s", (newer,))
    try:
        with pytest.raises(StoreError, match=rf"pvewatch_test_.*version {newer} is newer"):
            PostgresStore(pg_config)
    finally:
        execute(pg_config, "UPDATE schema_version SET version = %s", (postgres_sql.SCHEMA_VERSION,))


def test_a_newer_schema_is_refused(db: Path) -> None:
    with SqliteStore(db) as store:
        assert store.schema_version == SCHEMA_VERSION
    header = bytearray(db.read_bytes())
    header[60:64] = (SCHEMA_VERSION + 7).to_bytes(4, "big")  # where user_version lives
    db.write_bytes(bytes(header))
    with pytest.raises(StoreError, match=rf"state\.db.*version {SCHEMA_VERSION + 7} is newer"):
        SqliteStore(db)


def test_an_unusable_file_is_a_store_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing" / "state.db"
    with pytest.raises(StoreError, match="open failed") as info:
        SqliteStore(missing)
    assert str(missing) in str(info.value)

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database, really" * 100)
    with pytest.raises(StoreError, match="not a database") as info:
        SqliteStore(garbage)
    assert str(garbage) in str(info.value)


def test_a_closed_store_says_so(store: AnyStore) -> None:
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.load("prod")


def test_memory_store_works() -> None:
    with SqliteStore(":memory:") as store:
        poll(store, snapshot(resources(2)), [event(1)])
        assert store.load("prod") == (snapshot(resources(2)), HEALTHY)


def test_threads_can_share_a_store(store: AnyStore, open_store: Opener) -> None:
    def watch(worker: int) -> None:
        cluster = f"c{worker}"
        for n in range(20):
            poll(store, snapshot(resources(n), cluster=cluster), [event(n, cluster=cluster)])
            store.pending_count("log")

    threads = [threading.Thread(target=watch, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.clusters() == ["c0", "c1", "c2", "c3"]
    assert store.pending_count("log") == store.pending_count("webhook") == 80
    with open_store() as fresh:
        assert fresh.load("c2")[0] == snapshot(resources(19), cluster="c2")


def test_ten_thousand_resources_are_cheap(store: AnyStore) -> None:
    res = resources(10_000)
    start = time.perf_counter()
    poll(store, snapshot(res), sinks=[])
    first = time.perf_counter() - start
    start = time.perf_counter()
    poll(store, snapshot(dict(res), n=1), sinks=[])
    unchanged = time.perf_counter() - start
    # Generous bounds for a loaded CI machine; on a laptop both are a few times lower.
    assert first < 1.0
    assert unchanged < 0.25


@pytest.mark.parametrize("quorate", [True, False, None])
def test_quorum_survives_a_reopen_and_a_failed_poll(
    open_store: Opener, quorate: bool | None
) -> None:
    snap = replace(snapshot(resources(2)), quorate=quorate)
    with open_store() as store:
        poll(store, snap)
        poll(store, None, health=FAILING)  # a failed poll knows nothing about quorum
    with open_store() as store:
        loaded, _ = store.load("prod")
    assert loaded is not None
    assert loaded.quorate is quorate


def test_rule_state_is_committed_with_the_poll_and_kept_when_not_given(
    open_store: Opener,
) -> None:
    with open_store() as store:
        assert store.load_rule_state("prod") == {}
        store.commit_poll(
            "prod",
            snapshot=snapshot(resources(1)),
            events=[],
            sinks=SINKS,
            health=HEALTHY,
            rule_state={"reported_tasks": ["UPID:pve1:1:2:3:vzdump:100:root@pam:"]},
        )
        poll(store, None, health=FAILING)  # no rule_state given: the stored one stays
    with open_store() as store:
        assert store.load_rule_state("prod") == {
            "reported_tasks": ["UPID:pve1:1:2:3:vzdump:100:root@pam:"]
        }
        with pytest.raises(StoreError):  # not JSON: refused, nothing written
            store.commit_poll(
                "prod",
                snapshot=None,
                events=[event(9)],
                sinks=SINKS,
                health=HEALTHY,
                rule_state={"bad": object()},
            )
        assert store.events() == []


def test_an_old_database_is_migrated(db: Path) -> None:
    """A database written by schema 1 (before quorum and rule state) opens and upgrades."""
    import sqlite3

    with SqliteStore(db) as store:
        poll(store, snapshot(resources(1)))
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE check_state")
    conn.execute("DROP TABLE rule_state")
    conn.execute("DROP TABLE silences")
    conn.execute("DROP INDEX outbox_lines")
    conn.execute("DROP TABLE sink_state")
    conn.execute("ALTER TABLE clusters DROP COLUMN quorate")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with SqliteStore(db) as store:
        assert store.schema_version == SCHEMA_VERSION
        loaded, _ = store.load("prod")
        assert loaded == snapshot(resources(1))
        assert store.load_rule_state("prod") == {}


def test_a_sink_keeps_its_state_across_a_reopen(open_store: Opener) -> None:
    with open_store() as store:
        store.put_sink_state("am", "f1", '{"a": 1}')
        store.put_sink_state("am", "f2", "two")
        store.put_sink_state("am", "f2", "zwei")
        store.put_sink_state("other", "f1", "x")
        store.put_sink_state("am", "gone", "x")
        store.put_sink_state("am", "gone", None)
    with open_store() as store:
        assert store.sink_state("am") == {"f1": '{"a": 1}', "f2": "zwei"}
        assert store.sink_state("other") == {"f1": "x"}
        assert store.sink_state("none") == {}
