"""Leadership through advisory locks on a real PostgreSQL server: replicas (in-process
PgLeadership objects, each with its own session) share the clusters, a joining one gets
its share, a stopped or cut-off one's clusters are taken over, and the store's fencing
refuses a commit from a replica that lost its lock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest

from pvewatch.config.types import PostgresConfig
from pvewatch.model import SourceHealth
from pvewatch.store.pg_leader import PgLeadership, application_name
from pvewatch.store.postgres import NotLeader, PostgresStore
from tests.pg import empty_tables, terminate

from .builders import resources, snapshot

CLUSTERS = ("a", "b", "c")


@pytest.fixture
def pg(pg_config: PostgresConfig) -> Iterator[PostgresConfig]:
    empty_tables(pg_config)
    with PostgresStore(pg_config):  # the schema
        yield pg_config


@asynccontextmanager
async def replica(pg: PostgresConfig, name: str, changes: list[tuple[str, bool]] | None = None
                  ) -> AsyncIterator[PgLeadership]:  # fmt: skip
    seen = changes if changes is not None else []
    leader = PgLeadership(
        pg, CLUSTERS, replica_id=name, on_change=lambda c, leading: seen.append((c, leading))
    )
    try:
        yield leader
    finally:
        await leader.stop()


async def test_replicas_share_the_clusters(pg: PostgresConfig) -> None:
    async with replica(pg, "one") as one, replica(pg, "two") as two:
        await one.look()
        assert one.led() == {"a", "b", "c"}
        assert one.delivered() == frozenset({"a", "b", "c", ""})
        await two.look()  # two is live now, but every cluster is held
        assert two.led() == set()
        await one.look()  # its share is 2: it gives "c" back
        assert one.led() == {"a", "b"}
        await two.look()
        assert two.led() == {"c"}
        assert two.delivered() == frozenset({"c"})  # the events of no cluster go with "a"
        await one.stop()  # others stop counting it at once
        await two.look()
        assert two.led() == {"a", "b", "c"}


async def test_a_replica_cut_off_stops_leading_and_another_takes_over(pg: PostgresConfig) -> None:
    changes: list[tuple[str, bool]] = []
    async with replica(pg, "cut", changes) as cut, replica(pg, "heir") as heir:
        await cut.look()
        await heir.look()
        assert cut.led() == {"a", "b", "c"}
        assert terminate(application_name("cut")) == 1
        await heir.look()  # the locks went with the session: free, and heir has room
        await heir.look()
        assert heir.led() == {"a", "b", "c"}
        await cut.look()  # its session is gone: it stops leading
        assert cut.led() == set()
        assert not cut.leads("a")
        assert cut.delivered() == frozenset()
        assert changes[-3:] == [("a", False), ("b", False), ("c", False)]
        await cut.look()  # back: a standby, all being held
        assert cut.led() == set()


async def test_a_commit_needs_the_lock_in_its_transaction(pg: PostgresConfig) -> None:
    async with replica(pg, "old") as old, replica(pg, "new") as new:
        await old.look()
        with PostgresStore(pg, fencing=old) as store, PostgresStore(pg, fencing=new) as other:
            store.commit_poll("a", snapshot=snapshot(resources(2), cluster="a"),
                              events=[], sinks=[], health=SourceHealth())  # fmt: skip
            with pytest.raises(NotLeader, match="does not lead cluster 'a'"):
                other.commit_poll("a", snapshot=None, events=[], sinks=[], health=SourceHealth())
            [status] = store.status()
            assert (status.cluster, status.leader) == ("a", "old")
            assert status.leader_since is not None
            terminate(application_name("old"))
            # Old still believes it leads (no look yet): the store asks the server.
            assert old.leads("a")
            with pytest.raises(NotLeader):
                store.commit_poll("a", snapshot=None, events=[], sinks=[], health=SourceHealth())
            await new.look()
            await new.look()
            other.commit_poll("a", snapshot=snapshot(resources(3), cluster="a", n=1),
                              events=[], sinks=[], health=SourceHealth())  # fmt: skip
            assert store.load("a")[0] == snapshot(resources(3), cluster="a", n=1)
            assert [s.leader for s in store.status()] == ["new"]


async def test_a_check_commits_only_where_the_replica_leads(pg: PostgresConfig) -> None:
    """After a failover the new leader goes on from the check's stored memory; the old
    one can no longer write it (or its events)."""
    from datetime import UTC, datetime

    from pvewatch.store.base import CheckState

    at = datetime(2026, 12, 4, tzinfo=UTC)
    async with replica(pg, "old") as old, replica(pg, "new") as new:
        await old.look()
        with PostgresStore(pg, fencing=old) as store, PostgresStore(pg, fencing=new) as other:
            row = CheckState("ceph", "up", at, 1)
            store.commit_check("a", "ceph", state={"open": {"k": {}}}, status=row,
                               events=[], sinks=[])  # fmt: skip
            with pytest.raises(NotLeader, match="does not lead cluster 'a'"):
                other.commit_check("a", "ceph", state={}, status=row, events=[], sinks=[])
            terminate(application_name("old"))
            await new.look()
            await new.look()
            assert other.load_check("a", "ceph") == {"open": {"k": {}}}
            with pytest.raises(NotLeader):
                store.commit_check("a", "ceph", state={}, status=row, events=[], sinks=[])
