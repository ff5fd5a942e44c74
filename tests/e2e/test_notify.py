"""PVE's and PBS's notifications end to end: the simulator acts as PVE's webhook target
(`/_sim/notify`, a failed `/_sim/vzdump`) and posts, on a real socket, to pvewatch's
listener (`POST /notify/<name>`); pvewatch records them and sends them through a webhook
receiver (native, Slack and Alertmanager bodies) and a JSON log.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from pvewatch.config.load import load_config
from pvewatch.config.types import Config
from pvewatch.lifecycle.reload import ConfigSource
from pvewatch.simulator.server import SimServer
from pvewatch.sinks.table import SINK_TYPES
from pvewatch.store.sqlite import SqliteStore
from tests.e2e.harness import (
    TOKEN,
    baseline_recorded,
    control,
    polls_served,
    read_events,
    running_watcher,
    simulator,
    wait_for,
)
from tests.e2e.receiver import SECRET, Receiver, receiver

LAB_TOKEN = "lab-notify-4f1c9a7e2b6d8035c1e9"
PBS_TOKEN = "pbs-notify-9b2e7d4c1a6f3058e7d2"


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with simulator(guests=8) as s:
        yield s


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def notify_config(sim: SimServer, tmp: Path, hook_url: str | None = None) -> Config:
    assert sim.fingerprint is not None
    (tmp / "pbs1.notify").write_text(PBS_TOKEN + "\n")
    sinks: dict[str, Any] = {
        "events": {"type": "log", "format": "json", "path": str(tmp / "events.jsonl")}
    }
    for fmt in ("native", "slack", "alertmanager") if hook_url else ():
        sinks[fmt] = {
            "type": "webhook",
            "url": f"{hook_url}/{fmt}",
            "format": fmt,
            "secret": SECRET,
            "timeout_secs": 2,
            "retry": {"initial_secs": 0.2, "max_secs": 1},
            "group_wait_secs": 0.5,
        }
    doc = {
        "clusters": [
            {
                "name": "e2e",
                "endpoints": [sim.url],
                "token": TOKEN,
                "tls": {"fingerprint": sim.fingerprint},
                "interval_secs": 1,
                "timeout_secs": 2,
                "notifications": {"token": LAB_TOKEN},
            }
        ],
        "backup_servers": [{"name": "pbs1", "notifications": {"token_file": "pbs1.notify"}}],
        "store": {"path": str(tmp / "state.db")},
        "http": {"listen": "127.0.0.1:0"},
        "rules": {"shape": {"hold": False, "flapping": False}},
        "sinks": sinks,
    }
    path = tmp / "watch.yaml"
    path.write_text(json.dumps(doc))
    path.chmod(0o600)
    return load_config(path, {}, sink_types=SINK_TYPES)


class Daemon:
    """A running watcher and where its listener is."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.url = ""
        self.bound = threading.Event()

    def listening(self, url: str) -> None:
        self.url = url
        self.bound.set()

    def events(self) -> list[dict[str, Any]]:
        return read_events(self.config.store.path.parent / "events.jsonl")

    def stored(self) -> list[dict[str, Any]]:
        with SqliteStore(self.config.store.path) as store:
            return [e.to_dict() for e in store.events(limit=100_000)]


@pytest.fixture
def daemon(sim: SimServer, hook: Receiver, tmp_path: Path) -> Iterator[Daemon]:
    running = Daemon(notify_config(sim, tmp_path, hook.url))
    with running_watcher(running.config, on_listening=running.listening):
        wait_for(running.bound.is_set, what="the listener")
        wait_for(lambda: baseline_recorded(running.config), what="the baseline")
        with control(sim) as c:
            target = {"url": f"{running.url}/notify/e2e", "token": LAB_TOKEN}
            assert c.put("/notify/target", json=target).status_code == 200
        yield running


def sim_notify(sim: SimServer, **spec: Any) -> dict[str, Any]:
    """Have the simulated PVE send one notification; its record once it was answered."""
    with control(sim) as c:
        record = c.post("/notify", json=spec).json()

        def answered() -> dict[str, Any] | None:
            sent = {r["id"]: r for r in c.get("/notify/sent").json()}
            done = sent[record["id"]]
            return done if done["status"] != "pending" else None

        return wait_for(answered, what="the notification to be answered")


def of_type(events: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == type_]


# (what the simulated PVE or PBS sends, the event, its severity)
ROWS: list[tuple[dict[str, Any], str, str]] = [
    ({"type": "vzdump", "severity": "error", "hostname": "pve1"}, "backup.failed", "critical"),
    ({"type": "vzdump", "severity": "info", "hostname": "pve2"}, "backup.succeeded", "info"),
    ({"type": "replication", "job-id": "100-0", "fail_count": 2}, "replication.failed", "warning"),
    ({"type": "fencing", "hostname": "pve3"}, "node.fenced", "critical"),
    ({"type": "package-updates"}, "node.updates_available", "info"),
    (
        {"type": "system-mail", "subject": "SMART error (Health) on pve1"},
        "node.system_mail",
        "warning",
    ),
    ({"type": "test"}, "pve.notification", "info"),
    ({"type": "odd", "severity": "error", "title": "Odd"}, "pve.notification", "critical"),
    ({"source": "pbs", "type": "gc", "severity": "error"}, "pbs.job_failed", "warning"),
    ({"source": "pbs", "type": "verify"}, "pbs.job_succeeded", "info"),
    (
        {"source": "pbs", "type": "sync", "severity": "error", "job-id": "s-1"},
        "pbs.job_failed",
        "warning",
    ),
    ({"source": "pbs", "type": "prune"}, "pbs.job_succeeded", "info"),
    ({"source": "pbs", "type": "tape-backup", "severity": "error"}, "pbs.job_failed", "warning"),
    ({"source": "pbs", "type": "tape-load"}, "pbs.job_succeeded", "info"),
    ({"source": "pbs", "type": "package-updates"}, "node.updates_available", "info"),
    ({"source": "pbs", "type": "acme"}, "pbs.notification", "info"),
]


def test_each_notification_type_becomes_its_event_in_every_format(
    sim: SimServer, daemon: Daemon, hook: Receiver
) -> None:
    sent = []
    for spec, _, _ in ROWS:
        pbs = spec.get("source") == "pbs"
        extra = {"url": f"{daemon.url}/notify/pbs1", "token": PBS_TOKEN} if pbs else {}
        record = sim_notify(sim, **spec, **extra)
        assert record["http_status"] == 202, record
        sent.append(record)

    def all_logged() -> list[dict[str, Any]] | None:
        found = [e for e in daemon.events() if "sent_at" in e.get("details", {})]
        return found if len(found) == len(ROWS) else None

    logged = wait_for(all_logged, what="every notification's event")
    by_title = {e["details"]["title"]: e for e in logged}
    for (spec, type_, severity), record in zip(ROWS, sent, strict=True):
        event = by_title[" ".join(record["title"].split())]
        assert (event["type"], event["severity"]) == (type_, severity), spec
        assert event["cluster"] == ("pbs1" if spec.get("source") == "pbs" else "e2e")
        assert event["details"]["fields"] == record["fields"]
    failed = of_type(logged, "backup.failed")[0]
    assert failed["resource"]["id"] == "node/pve1"
    assert failed["details"]["failed_guests"] == [g["vmid"] for g in failed["details"]["guests"]]
    assert failed["details"]["failed_guests"], "the guest table was read"
    replication = of_type(logged, "replication.failed")[0]
    assert replication["resource"]["id"] == "replication/100-0"
    assert replication["condition"] == "replication.failed:replication/100-0"
    sync = next(e for e in logged if e["details"].get("job_type") == "sync")
    assert (sync["details"]["datastore"], sync["details"]["job_id"]) == ("store1", "s-1")
    mail = of_type(logged, "node.system_mail")[0]
    assert mail["summary"] == "e2e: SMART error (Health) on pve1"

    # The same events through the webhook sink in three formats.
    def bodies(fmt: str) -> list[Any]:
        return [d.json() for d in hook.accepted() if d.path.endswith(f"/{fmt}")]

    wait_for(lambda: len(bodies("native")) >= len(ROWS), what="native deliveries")
    native = {b["data"]["id"] for b in bodies("native")}
    assert {e["id"] for e in logged} <= native

    def slack_text() -> str | None:
        text = " ".join(json.dumps(b, ensure_ascii=False) for b in bodies("slack"))
        wanted = ("Trying to fence node 'pve3'", "backup failed", "Verify Datastore")
        return text if all(w in text for w in wanted) else None

    assert "pbs1" in wait_for(slack_text, what="the events in Slack messages")
    alerts = wait_for(
        lambda: [
            a
            for b in bodies("alertmanager")
            for a in b.get("alerts", [])
            if a["labels"]["alertname"] == "PveReplicationFailed"
            and a["labels"]["id"] == "replication/100-0"
        ],
        what="the replication failure as an Alertmanager alert",
    )
    assert alerts[0]["status"] == "firing"
    assert all(d.verified for d in hook.accepted())


def test_a_failed_backup_seen_by_the_notification_first_is_one_page(
    sim: SimServer, daemon: Daemon
) -> None:
    with control(sim) as c:
        # The poll cannot see tasks: the notification alone reports the failure.
        blind = {"path": "/cluster/tasks", "status": 500, "message": "tasks unreadable"}
        assert c.put("/paths", json=blind).status_code in (200, 204)
        ran = c.post("/vzdump", json={"vmids": [100], "fail": {"100": "no space left"}})
        assert ran.status_code == 200, ran.text
    backup = wait_for(lambda: of_type(daemon.events(), "backup.failed"), what="backup.failed")
    assert backup[0]["details"]["failed_guests"] == [100]
    assert not of_type(daemon.events(), "task.failed")

    before = polls_served(sim)
    with control(sim) as c:
        assert c.delete("/paths").status_code in (200, 204)
    wait_for(lambda: polls_served(sim) > before + 2, what="polls that see the task")

    def second_sighting() -> list[dict[str, Any]]:
        return [e for e in of_type(daemon.stored(), "task.failed") if e.get("suppressed")]

    task = wait_for(second_sighting, what="task.failed recorded as a duplicate")[0]
    assert task["suppressed"] == "duplicate"
    assert task["details"]["duplicate_of"] == backup[0]["id"]
    stored = {e["id"]: e for e in daemon.stored()}
    merged = stored[backup[0]["id"]]["details"]
    assert merged["upid"] == task["details"]["upid"], "the task's details joined the first"
    assert merged["seen_as"] == {"id": task["id"], "type": "task.failed"}
    assert not of_type(daemon.events(), "task.failed"), "one failure, one page"


def test_a_failed_backup_seen_by_the_poll_first_is_one_page(sim: SimServer, daemon: Daemon) -> None:
    with control(sim) as c:
        ran = c.post("/vzdump", json={"vmids": [101], "fail": {"101": "broken pipe"}, "notify": 0})
        assert ran.status_code == 200, ran.text
        node = ran.json()["tasks"][0].split(":")[1]
    # PVE's webhook is not configured for it: the poll alone reports the failure.
    task = wait_for(lambda: of_type(daemon.events(), "task.failed"), what="task.failed")[0]
    assert task["details"]["task_type"] == "vzdump"

    record = sim_notify(
        sim,
        type="vzdump",
        severity="error",
        hostname=node,
        guests=[{"vmid": 101, "status": "err", "error": "broken pipe"}],
    )
    assert record["http_status"] == 202

    def duplicate() -> list[dict[str, Any]]:
        return [e for e in of_type(daemon.stored(), "backup.failed") if e.get("suppressed")]

    dup = wait_for(duplicate, what="backup.failed recorded as a duplicate")[0]
    assert dup["details"]["duplicate_of"] == task["id"]
    merged = {e["id"]: e for e in daemon.stored()}[task["id"]]["details"]
    assert merged["failed_guests"] == [101]
    assert merged["job_id"] is None
    # A different node's failure in the same minutes is its own page.
    other = "pve2" if node != "pve2" else "pve3"
    sim_notify(sim, type="vzdump", severity="error", hostname=other)
    wait_for(lambda: of_type(daemon.events(), "backup.failed"), what="the other node's page")
    assert len(of_type(daemon.events(), "task.failed")) == 1


def test_pve_repeating_a_replication_failure_is_one_page(sim: SimServer, daemon: Daemon) -> None:
    now = int(time.time())
    job = {"type": "replication", "job-id": "102-0"}
    first = sim_notify(sim, **job, fail_count=1, timestamp=now - 300)
    again = sim_notify(sim, **job, fail_count=2, timestamp=now)
    assert first["http_status"] == again["http_status"] == 202
    stored = wait_for(
        lambda: len(of_type(daemon.stored(), "replication.failed")) == 2 or None,
        what="both recorded",
    )
    assert stored
    found = of_type(daemon.stored(), "replication.failed")
    pages = [e for e in found if e.get("suppressed") != "duplicate"]
    repeats = [e for e in found if e.get("suppressed") == "duplicate"]
    assert [e["details"]["fail_count"] for e in pages] == [1]
    assert [e["details"]["duplicate_of"] for e in repeats] == [pages[0]["id"]]
    assert (
        pages[0]["condition"] == repeats[0]["condition"] == "replication.failed:replication/102-0"
    )


def post(url: str, body: bytes, /, **headers: str) -> httpx.Response:
    return httpx.post(url, content=body, headers=headers, timeout=10)


NOTICE = json.dumps(
    {
        "title": "vzdump backup status (pve1): backup failed",
        "message": "",
        "severity": "error",
        "timestamp": 1730062803,
        "fields": {"type": "vzdump", "hostname": "pve1"},
    }
).encode()


def test_refusals(daemon: Daemon, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"{daemon.url}/notify/e2e"
    json_type = {"Content-Type": "application/json"}
    good = {"Authorization": f"Bearer {LAB_TOKEN}", **json_type}
    assert post(url, NOTICE, **json_type).status_code == 401
    wrong = post(url, NOTICE, Authorization=f"Bearer {PBS_TOKEN}", **json_type)
    unknown = post(f"{daemon.url}/notify/nope", NOTICE, **good)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.content == unknown.content
    assert wrong.headers.get("WWW-Authenticate") == unknown.headers.get("WWW-Authenticate")
    basic = post(url, NOTICE, Authorization="Basic dXNlcjpwYXNz", **json_type)
    assert basic.status_code == 401

    too_big = post(url, b"{" + b" " * (1024 * 1024) + b"}", **good)
    assert too_big.status_code == 413
    plain = post(url, NOTICE, Authorization=f"Bearer {LAB_TOKEN}", **{"Content-Type": "text/plain"})
    assert plain.status_code == 415
    for body, reason in (
        (b"{not json", "not JSON"),
        (b"[]", "JSON object"),
        (json.dumps({"title": "x", "severity": "loud", "timestamp": 1}).encode(), "severity"),
    ):
        answer = post(url, body, **good)
        assert answer.status_code == 400, body
        assert reason in answer.text
        assert answer.text.count("\n") == 1

    # A body that repeats secrets (the token, the PVE API token) reaches no log, refused or
    # recorded, and no answer.
    leaky = json.loads(NOTICE)
    leaky["message"] = f"token {LAB_TOKEN} api {TOKEN}"
    leaky_body = json.dumps(leaky).encode()
    bad = json.dumps({"title": LAB_TOKEN, "severity": TOKEN, "timestamp": 1}).encode()
    assert post(url, bad, **good).status_code == 400
    accepted = post(url, leaky_body, **good)
    assert accepted.status_code == 202
    assert post(url, leaky_body, Authorization=f"Bearer {TOKEN}", **json_type).status_code == 401
    assert LAB_TOKEN not in caplog.text
    assert TOKEN.split("=")[1] not in caplog.text
    assert f"notify/e2e: backup.failed {accepted.json()['id']}" in caplog.text

    with httpx.Client(timeout=10) as client:
        metrics = client.get(f"{daemon.url}/metrics").text
    counted = [x for x in metrics.splitlines() if x.startswith("pvewatch_events_total{")]
    assert any('type="backup.failed"' in x and 'cluster="e2e"' in x for x in counted)
    for result in ("unauthorized", "bad_request", "unsupported_media_type", "accepted"):
        assert f'result="{result}"' in metrics, result
    assert (
        'pvewatch_notifications_received_total{result="accepted",source="pve",type="vzdump"}'
        in metrics
    )


def test_a_burst_of_500_notifications_while_polling(sim: SimServer, daemon: Daemon) -> None:
    url = f"{daemon.url}/notify/e2e"
    headers = {"Authorization": f"Bearer {LAB_TOKEN}", "Content-Type": "application/json"}
    polls_before = polls_served(sim)
    # One connection per sender, as PVE's nodes keep theirs (a new httpx.Client costs
    # more than the request: its TLS context).
    clients = threading.local()
    opened: list[httpx.Client] = []
    started = time.monotonic()

    def send(i: int) -> int:
        body = json.loads(NOTICE)
        body |= {
            "title": f"New software packages available (pve{i})",
            "timestamp": 1_800_000_000 + i,
        }
        body["fields"] = {"type": "package-updates", "hostname": "pve1"}
        client = getattr(clients, "client", None)
        if client is None:
            client = clients.client = httpx.Client(timeout=30)
            opened.append(client)
        return client.post(url, content=json.dumps(body), headers=headers).status_code

    try:
        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(send, range(500)))
        took = time.monotonic() - started
    finally:
        for client in opened:
            client.close()
    assert codes == [202] * 500
    stored = of_type(daemon.stored(), "node.updates_available")
    assert len(stored) == 500, "every 202 is in the store"
    assert polls_served(sim) > polls_before, "polls went on"
    logged = wait_for(
        lambda: len(of_type(daemon.events(), "node.updates_available")) == 500 or None,
        timeout=60,
        what="500 events delivered",
    )
    assert logged
    print(f"500 notifications accepted in {took:.2f} s")


def _listening(log: Path) -> re.Match[str] | None:
    return re.search(r"serving .* on (http://\S+)", log.read_text())


def test_kill_9_right_after_202_loses_nothing(sim: SimServer, tmp_path: Path) -> None:
    config = notify_config(sim, tmp_path)
    path = tmp_path / "watch.yaml"
    accepted: list[str] = []
    for i in range(4):
        stderr = tmp_path / f"stderr{i}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "pvewatch", "run", "-c", str(path), "--log-level", "info"],
            stdout=subprocess.DEVNULL,
            stderr=stderr.open("wb"),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            found = wait_for(functools.partial(_listening, stderr), what="pvewatch run to listen")
            body = json.loads(NOTICE)
            body |= {"title": f"Trying to fence node 'pve{i}'", "timestamp": 1_800_000_000 + i}
            body["fields"] = {"type": "fencing", "hostname": f"pve{i}"}
            answer = post(
                f"{found.group(1)}/notify/e2e",
                json.dumps(body).encode(),
                Authorization=f"Bearer {LAB_TOKEN}",
                **{"Content-Type": "application/json"},
            )
            process.send_signal(signal.SIGKILL)  # right after the answer
        finally:
            process.kill()
            process.wait(timeout=30)
        assert answer.status_code == 202, answer.text
        accepted.append(answer.json()["id"])
        with SqliteStore(config.store.path) as store:
            stored = {e.id for e in store.events(type_pattern="node.fenced")}
            queued = {d.event.id for d in store.deliveries(sink="events")}
            delivered = {d.event.id for d in store.deliveries(sink="events", state="delivered")}
        assert set(accepted) <= stored
        assert set(accepted) <= queued | delivered, "its outbox row went in with it"
    # The next start sends what the killed ones had accepted.
    with running_watcher(config):
        wait_for(
            lambda: set(accepted) <= {e["id"] for e in read_events(tmp_path / "events.jsonl")},
            what="every accepted notification delivered after the restart",
        )


def test_notifications_during_a_reload_are_all_accepted(sim: SimServer, tmp_path: Path) -> None:
    config = notify_config(sim, tmp_path)
    running = Daemon(config)
    source = ConfigSource(load=lambda: config)
    with running_watcher(config, on_listening=running.listening, source=source) as watching:
        wait_for(running.bound.is_set, what="the listener")
        wait_for(lambda: baseline_recorded(config), what="the baseline")
        headers = {"Authorization": f"Bearer {LAB_TOKEN}", "Content-Type": "application/json"}
        codes: list[int] = []
        reloaded = threading.Event()
        count = itertools.count()

        def sender() -> None:
            with httpx.Client(timeout=30) as client:
                after = 0
                while after < 5:  # until the reload is over, and a few more
                    after += reloaded.is_set()
                    body = json.loads(NOTICE)
                    i = next(count)
                    body |= {"title": f"reload {i}", "timestamp": 1_800_000_000 + i}
                    url = f"{running.url}/notify/e2e"
                    codes.append(
                        client.post(url, content=json.dumps(body), headers=headers).status_code
                    )

        with ThreadPoolExecutor(4) as pool:
            senders = [pool.submit(sender) for _ in range(4)]
            wait_for(lambda: len(codes) >= 20, what="notifications flowing")
            watching.reload()
            wait_for(lambda: watching.readies >= 2, what="the reload to finish")
            reloaded.set()
            for done in senders:
                done.result(timeout=60)
        assert set(codes) == {202}, sorted(set(codes))
        stored = [e for e in running.stored() if e["summary"].startswith("e2e: reload ")]
        assert len(stored) == len(codes)
