"""`POST /notify/{name}` on a real listener: the bearer token of each name instead of the
listener's basic auth, the answers while no runtime is attached, and what is committed
before the 202 (pvewatch.http.notify)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from pvewatch.config.types import (
    BackupServerConfig,
    ClusterConfig,
    Config,
    HttpConfig,
    NotificationsConfig,
)
from pvewatch.http.auth import BearerAuth
from pvewatch.http.listener import Listener
from pvewatch.http.notify import Inbox, Target
from pvewatch.model import Event
from pvewatch.observability.metrics import Metrics
from pvewatch.observability.probes import Heartbeat, Readiness
from pvewatch.secret import Secret
from pvewatch.store.base import Routing
from pvewatch.store.sqlite import SqliteStore
from tests.e2e.test_notify import NOTICE
from tests.test_http import HASH

TOKEN = "0123456789abcdef-lab"
PBS = "0123456789abcdef-pbs"
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
BODY = NOTICE  # a failed backup on pve1
JSON = {"Content-Type": "application/json"}


def config() -> Config:
    lab = ClusterConfig(
        "lab", ("https://pve1:8006",), notifications=NotificationsConfig(Secret(TOKEN))
    )
    quiet = ClusterConfig("quiet", ("https://pve9:8006",))
    pbs = BackupServerConfig("pbs1", NotificationsConfig(Secret(PBS)))
    return Config(clusters=(lab, quiet), backup_servers=(pbs,))


class Rig:
    def __init__(self, listener: Listener, inbox: Inbox, store: SqliteStore, target: Target):
        self.listener, self.inbox, self.store, self.target = listener, inbox, store, target
        self.woken: list[list[Event]] = []

    def post(self, name: str, authorization: str | None = None) -> httpx.Response:
        headers = JSON | ({"Authorization": authorization} if authorization else {})
        return httpx.post(f"{self.listener.url}/notify/{name}", content=BODY, headers=headers)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    metrics = Metrics(clusters={"lab": 1.0}, sinks=["console"])
    inbox = Inbox(wait_secs=1.0)
    listener = Listener(
        HttpConfig(listen="127.0.0.1:0", basic_auth_users={"prometheus": Secret(HASH)}),
        metrics=metrics,
        readiness=Readiness(),
        heartbeat=Heartbeat(),
        routes=(inbox.route(),),
    )
    store = SqliteStore(tmp_path / "state.db")
    woken: list[list[Event]] = []
    target = Target(config(), store, lambda e: ["console"], metrics, lambda: NOW, woken.append)
    listener.start()
    rig = Rig(listener, inbox, store, target)
    rig.woken = woken
    try:
        yield rig
    finally:
        listener.close()
        store.close()


def test_the_bearer_token_of_the_name_not_basic_auth(rig: Rig) -> None:
    rig.inbox.attach(rig.target)
    assert httpx.get(f"{rig.listener.url}/metrics").status_code == 401, "basic auth elsewhere"
    basic = httpx.BasicAuth("prometheus", "s3cret")
    assert httpx.get(f"{rig.listener.url}/metrics", auth=basic).status_code == 200
    assert rig.post("lab").status_code == 401
    with_basic = httpx.post(
        f"{rig.listener.url}/notify/lab", content=BODY, headers=JSON, auth=basic
    )
    assert with_basic.status_code == 401, "the listener's users cannot post notifications"
    assert rig.post("lab", authorization=f"Bearer {PBS}").status_code == 401
    assert rig.post("pbs1", authorization=f"Bearer {TOKEN}").status_code == 401
    assert rig.post("quiet", authorization=f"Bearer {TOKEN}").status_code == 401
    assert rig.post("lab", authorization=f"bearer  {TOKEN}").status_code == 401

    answer = rig.post("lab", authorization=f"Bearer {TOKEN}")
    assert answer.status_code == 202
    recorded = answer.json()
    assert recorded["type"] == "backup.failed"
    # Committed before the answer: the event and its outbox row are in the store.
    assert [e.id for e in rig.store.events()] == [recorded["id"]]
    assert [d.event.id for d in rig.store.deliveries(sink="console")] == [recorded["id"]]
    assert [[e.id for e in batch] for batch in rig.woken] == [[recorded["id"]]]
    pbs = rig.post("pbs1", authorization=f"Bearer {PBS}")
    assert pbs.status_code == 202
    assert rig.store.events()[-1].cluster == "pbs1"


def test_the_same_notification_twice_is_one_event(rig: Rig) -> None:
    rig.inbox.attach(rig.target)
    first = rig.post("lab", authorization=f"Bearer {TOKEN}")
    again = rig.post("lab", authorization=f"Bearer {TOKEN}")
    assert first.json()["id"] == again.json()["id"]
    assert len(rig.store.events()) == 1
    assert len(rig.store.deliveries(sink="console")) == 1


def test_without_a_runtime_no_token_is_known(rig: Rig) -> None:
    assert rig.post("lab", authorization=f"Bearer {TOKEN}").status_code == 401


def test_during_a_reload_a_notification_waits_for_the_next_runtime(rig: Rig) -> None:
    rig.inbox.attach(rig.target)
    rig.inbox.detach(rig.target)  # the old runtime stopped; its tokens stay valid
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(rig.post, "lab", f"Bearer {TOKEN}")
        time.sleep(0.3)  # the request is in and waits (not a wait for a condition)
        assert not waiting.done()
        rig.inbox.attach(rig.target)
        assert waiting.result(timeout=10).status_code == 202
    rig.inbox.detach(rig.target)  # stopping: no runtime comes
    started = time.monotonic()
    assert rig.post("lab", authorization=f"Bearer {TOKEN}").status_code == 503
    assert 0.9 <= time.monotonic() - started < 5


class HeldStore(SqliteStore):
    """A store whose commit of a notification waits until the test lets it go."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.entered, self.release = threading.Event(), threading.Event()

    def record_events(self, events: Sequence[Event], sinks: Routing) -> list[Event]:
        self.entered.set()
        assert self.release.wait(10)
        return super().record_events(events, sinks)


def test_a_runtime_that_stops_lets_the_notification_it_records_commit(
    rig: Rig, tmp_path: Path
) -> None:
    """A reload closes the old runtime's store: a notification it is committing finishes
    first (before: "the store is closed", a 503 PVE never retries)."""
    store = HeldStore(tmp_path / "held.db")
    try:
        target = dataclasses.replace(rig.target, store=store)
        rig.inbox.attach(target)
        with ThreadPoolExecutor(2) as pool:
            posted = pool.submit(rig.post, "lab", f"Bearer {TOKEN}")
            assert store.entered.wait(10)
            stopping = pool.submit(rig.inbox.detach, target)  # then the store closes
            # detach waits for the commit in flight (a deadline, not a sleep: a detach that
            # did not wait would be done well within it).
            with pytest.raises(TimeoutError):
                stopping.result(timeout=0.5)
            store.release.set()
            assert posted.result(timeout=10).status_code == 202
            stopping.result(timeout=10)
        assert len(store.events()) == 1
    finally:
        store.close()


def test_a_store_that_cannot_commit_answers_503(rig: Rig) -> None:
    rig.inbox.attach(rig.target)
    rig.store.close()
    answer = rig.post("lab", authorization=f"Bearer {TOKEN}")
    assert answer.status_code == 503
    assert "state.db" not in answer.text, "no detail of the store to the sender"


def test_only_post(rig: Rig) -> None:
    rig.inbox.attach(rig.target)
    answer = httpx.get(f"{rig.listener.url}/notify/lab")
    assert answer.status_code == 405
    assert answer.headers["Allow"] == "POST"


@pytest.mark.parametrize(
    ("token", "header", "ok"),
    [
        (TOKEN, f"Bearer {TOKEN}", True),
        (TOKEN, f"Bearer {TOKEN} ", True),
        (TOKEN, f"Bearer {TOKEN}x", False),
        (TOKEN, TOKEN, False),
        (TOKEN, None, False),
        (TOKEN, "", False),
        (None, "Bearer ", False),
        (None, "Bearer whatever", False),
    ],
)
def test_bearer_auth(token: str | None, header: str | None, ok: bool) -> None:
    refused: list[int] = []
    auth = BearerAuth(Secret(token) if token else None, lambda: refused.append(1))
    assert auth.quick(header) is ok
    assert auth.check(header) is ok
    assert len(refused) == (0 if ok else 2)
