"""What /healthz and /readyz decide: pure functions of a heartbeat age and poll progress,
and the progress `Readiness` keeps from the polls, leadership and the database."""

from __future__ import annotations

import asyncio

import pytest

from pvewatch.observability.probes import ClusterProgress, Heartbeat, Readiness, liveness, readiness


@pytest.mark.parametrize(
    ("clusters", "ready", "failing"),
    [
        ({"a": ClusterProgress(10)}, False, ["cluster:a"]),  # before the first success
        ({"a": ClusterProgress(10, last_success=95.0)}, True, []),
        ({"a": ClusterProgress(10, last_success=70.0)}, True, []),  # exactly 3 intervals
        ({"a": ClusterProgress(10, last_success=69.0)}, False, ["cluster:a"]),
        ({"a": ClusterProgress(10, 99.0), "b": ClusterProgress(1, 90.0)}, False, ["cluster:b"]),
        ({"a": ClusterProgress(10, 99.0, store_ok=False)}, False, ["store"]),
        # The poll in flight when this replica lost the cluster had its commit refused,
        # recorded after the cluster went to another replica: not a store problem.
        ({"a": ClusterProgress(10, 99.0, store_ok=False, leader=False)}, True, []),
    ],
)
def test_readiness(clusters: dict[str, ClusterProgress], ready: bool, failing: list[str]) -> None:
    probe = readiness(clusters, now=100.0)
    assert probe.ok is ready
    assert [c.name for c in probe.checks if not c.ok] == failing
    body = probe.to_dict()
    assert body["status"] == ("ok" if ready else "failing")
    assert [c["name"] for c in body["checks"]] == [
        *(f"cluster:{n}" for n in sorted(clusters)),
        "store",
    ]


def test_readiness_says_why() -> None:
    never, stale = (
        readiness({"a": ClusterProgress(10)}, 0.0),
        readiness({"a": ClusterProgress(10, last_success=0.0)}, 45.0),
    )
    assert never.checks[0].detail == "no successful poll yet"
    assert stale.checks[0].detail == "last successful poll 45 s ago (limit 30 s)"
    refused = readiness({"b": ClusterProgress(1, 0.0, store_ok=False)}, 0.0).checks[-1]
    assert refused.detail == "the last commit failed (clusters b)"


@pytest.mark.parametrize(("age", "ok"), [(0.0, True), (10.0, True), (10.5, False)])
def test_liveness(age: float, ok: bool) -> None:
    probe = liveness(age, stale_after_secs=10.0)
    assert probe.ok is ok
    assert ("blocked" in probe.checks[0].detail) is not ok


def test_heartbeat_age_follows_its_clock() -> None:
    now = [5.0]
    heartbeat = Heartbeat(clock=lambda: now[0])
    assert heartbeat.age() == 0.0
    now[0] = 7.5
    assert heartbeat.age() == 2.5
    heartbeat.beat()
    assert heartbeat.age() == 0.0


async def test_heartbeat_runs_on_the_loop_until_cancelled() -> None:
    now = [0.0]
    heartbeat = Heartbeat(clock=lambda: now[0])
    now[0] = 50.0
    task = asyncio.create_task(heartbeat.run(interval_secs=0.01))
    await asyncio.sleep(0)
    assert heartbeat.age() == 0.0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_readiness_of_a_replica() -> None:
    """With replicas: a cluster another replica leads is fine; a replica that lost the
    database is not ready, and says why."""
    standby = ClusterProgress(10.0, leader=False)
    lost = ClusterProgress(10.0, last_success=99.0, database_error="cannot reach the database")
    probe = readiness({"prod": standby}, now=100.0)
    assert probe.ok
    assert probe.checks[0].detail == "polled by another replica, which leads it"
    probe = readiness({"prod": lost}, now=100.0)
    assert not probe.ok
    failing = {c.name: c.detail for c in probe.checks if not c.ok}
    assert failing == {
        "cluster:prod": "not polled: this replica lost the database",
        "database": "cannot reach the database; not leading any cluster",
    }


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def polled(readiness: Readiness, cluster: str = "prod", error_kind: str | None = None) -> None:
    readiness.poll_finished(
        cluster,
        ok=error_kind is None,
        duration_secs=0.2,
        snapshot=None,
        events=[],
        error_kind=error_kind,
    )


def tracked() -> tuple[Readiness, Clock]:
    clock = Clock()
    readiness = Readiness(clock)
    readiness.reconfigure({"prod": 10.0, "lab": 5.0})
    return readiness, clock


def test_progress_follows_polls() -> None:
    readiness, clock = tracked()
    assert readiness.progress()["prod"].last_success is None
    assert not readiness.probe().ok
    polled(readiness)
    assert readiness.progress()["prod"].last_success == clock.now
    assert readiness.progress()["lab"].interval_secs == 5.0
    polled(readiness, error_kind="store")
    assert readiness.progress()["prod"].store_ok is False
    polled(readiness, error_kind="timeout")  # the source: the store is not blamed
    assert readiness.progress()["prod"].store_ok is False
    polled(readiness)
    assert readiness.progress()["prod"].store_ok is True
    polled(readiness, "lab")
    assert readiness.probe().ok
    clock.now += 20  # more than 3 intervals of lab (5 s), less than prod's (10 s)
    assert [c.name for c in readiness.probe().checks if not c.ok] == ["cluster:lab"]


def test_a_reload_keeps_the_last_success_of_what_stays() -> None:
    readiness, clock = tracked()
    polled(readiness)
    last_success = readiness.progress()["prod"].last_success
    clock.now += 5
    readiness.reconfigure({"prod": 30.0, "dev": 1.0})
    progress = readiness.progress()
    assert set(progress) == {"prod", "dev"}
    assert progress["prod"].interval_secs == 30.0
    assert progress["prod"].last_success == last_success  # /readyz does not flap
    assert progress["dev"].last_success is None


def test_leadership_and_the_database() -> None:
    readiness, _ = tracked()
    polled(readiness, error_kind="store")
    readiness.leader_changed("prod", False)  # another replica took it over
    progress = readiness.progress()["prod"]
    assert (progress.leader, progress.store_ok) == (False, True)  # its refusal is moot
    readiness.database_changed(False, "cannot reach the database postgresql://db:5432/pw")
    assert readiness.progress()["lab"].database_error is not None
    assert not readiness.probe().ok
    readiness.database_changed(True, "up")
    assert readiness.progress()["lab"].database_error is None
