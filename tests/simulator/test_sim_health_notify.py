"""The simulated PVE's notifications: rendered with the documented body template as
proxmox-notify renders it, sent once to the webhook target with the bearer token, and
recorded with the answer; titles, messages and fields per type as PVE's templates."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvewatch.simulator.churn import PendingOp, complete_due
from pvewatch.simulator.health import render
from pvewatch.simulator.health.notices import Notice
from pvewatch.simulator.health.notifier import BODY_TEMPLATE, MAX_KEPT, Notifier
from pvewatch.simulator.server import SimServer
from tests.e2e.harness import wait_for
from tests.e2e.receiver import Receiver
from tests.simulator.conftest import SimFactory
from tests.simulator.shapes import captured

NOTIFY_TOKEN = "n0tify-s3cret-t0ken-value"


@pytest.fixture
def hook() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture
def notifying(make_sim: SimFactory, hook: Receiver) -> SimServer:
    return make_sim(notify_url=hook.url, notify_token=NOTIFY_TOKEN)


def control(sim: SimServer) -> httpx.Client:
    return httpx.Client(base_url=sim.url + "/_sim")


def finished(ctl: httpx.Client, count: int = 1) -> list[dict[str, Any]]:
    def done() -> list[dict[str, Any]] | None:
        sent = ctl.get("/notify/sent").json()
        settled = [s for s in sent if s["status"] != "pending"]
        return sent if len(settled) >= count else None

    return wait_for(done, what=f"{count} notification(s) settled")


def body_of(title: str, message: str, fields: dict[str, str]) -> Any:
    data = {"title": title, "message": message, "severity": "error", "timestamp": 1730062803}
    return json.loads(render.render_template(BODY_TEMPLATE, data | {"fields": fields}))


@given(st.text(), st.text(), st.dictionaries(st.text(), st.text(), max_size=4))
def test_the_documented_body_is_json_whatever_the_text(
    title: str, message: str, fields: dict[str, str]
) -> None:
    parsed = body_of(title, message, fields)
    assert (parsed["title"], parsed["message"], parsed["fields"]) == (title, message, fields)


@pytest.mark.parametrize(
    ("template", "value", "rendered"),
    [
        ("{{ escape x }}", 'say "hi"\nbye\t\\', 'say \\"hi\\"\\nbye\\t\\\\'),
        ("{{ escape x }}", "grüße \x01", "grüße \\u0001"),
        ("{{ json x }}", {"b": "2", "a": "1"}, '{"a":"1","b":"2"}'),
        ("{{ json x }}", None, "null"),
        ("{{ x }}", 1730062803, "1730062803"),
        ("{{ x }}", None, ""),
        ("{{ url-encode x }}", "a b/c?d=e&f+g", "a%20b%2Fc%3Fd%3De%26f%2Bg"),
        ("{{ url-encode x }}", '~-._"<>', '~-._"<>'),
    ],
)
def test_template_helpers_as_proxmox_notify(template: str, value: Any, rendered: str) -> None:
    assert render.render_template(template, {"x": value}) == rendered


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1 KiB"), (2153611264, "2.006 GiB"), (1536, "1.5 KiB")],
)
def test_human_bytes(size: int, text: str) -> None:
    assert render.human_bytes(size) == text


@pytest.mark.parametrize(
    ("secs", "text"), [(0, "0s"), (3, "3s"), (80, "1m 20s"), (3600, "1h"), (90061, "1d 1h 1m 1s")]
)
def test_duration(secs: int, text: str) -> None:
    assert render.duration(secs) == text


def test_guest_table_is_pves_plaintext_table(notifying: SimServer) -> None:
    """The table in FACTS-health.md's vzdump message: each column its widest cell + 4."""
    real = captured("synthetic-webhook-context-pve-vzdump-failed.json")["message"]
    guests = [
        {"vmid": 100, "name": "web", "status": "ok", "time": 80, "size": 2153611264}
        | {"filename": "/mnt/pve/nfs-bak/dump/vzdump-qemu-100-2024_10_27-21_00_03.vma.zst"},
        {"vmid": 101, "name": "db", "status": "err", "time": 3, "error": "unable to find VM '101'"},
    ]
    with control(notifying) as ctl:
        ctl.post("/notify", json={"type": "vzdump", "guests": guests, "job-id": "backup-a1"})
        (sent,) = finished(ctl)
    message = json.loads(sent["body"])["message"]
    table = real.split("=======\n", 1)[1].split("Total running time")[0]
    assert message.split("=======\n", 1)[1].startswith(table)  # then PVE's blank line
    assert "Total running time: 1m 23s\nTotal size: 2.006 GiB\n" in message


def test_notification_reaches_the_target_once_with_the_token(
    notifying: SimServer, hook: Receiver
) -> None:
    with control(notifying) as ctl:
        answer = ctl.post(
            "/notify", json={"type": "vzdump", "severity": "error", "hostname": "pve2"}
        )
        assert answer.status_code == 200
        assert answer.json()["status"] == "pending"
        (sent,) = finished(ctl)
    (delivery,) = hook.deliveries()
    assert delivery.headers["authorization"] == f"Bearer {NOTIFY_TOKEN}"
    assert delivery.headers["content-type"] == "application/json"
    assert delivery.headers["user-agent"].startswith("proxmox-sync-http-client/")
    body = delivery.json()
    assert body["title"] == "vzdump backup status (pve2.sim.lan): backup failed "
    assert (body["severity"], body["fields"]) == ("error", {"type": "vzdump", "hostname": "pve2"})
    assert isinstance(body["timestamp"], int)
    assert (sent["status"], sent["http_status"]) == ("sent", 200)
    assert sent["headers"]["Authorization"] == "Bearer <masked>"
    assert NOTIFY_TOKEN not in json.dumps(ctl_sent(notifying))


def ctl_sent(sim: SimServer) -> Any:
    with control(sim) as ctl:
        return ctl.get("/notify/sent").json()


def test_a_failed_send_is_not_retried(notifying: SimServer, hook: Receiver) -> None:
    hook.set(status=500)
    with control(notifying) as ctl:
        ctl.post("/notify", json={"type": "test"})
        (sent,) = finished(ctl)
        assert (sent["status"], sent["http_status"], sent["error"]) == ("failed", 500, "HTTP 500")
    assert len(hook.deliveries()) == 1


def test_an_unreachable_target_is_recorded(make_sim: SimFactory, hook: Receiver) -> None:
    url = hook.url
    hook.stop()
    sim = make_sim(notify_url=url)
    with control(sim) as ctl:
        ctl.post("/notify", json={"type": "package-updates"})
        (sent,) = finished(ctl)
    assert sent["status"] == "failed"
    assert "refused" in sent["error"].lower()
    assert "Authorization" not in sent["headers"]  # no token configured, none sent


def test_target_set_per_call_and_at_run_time(sim: SimServer, hook: Receiver) -> None:
    with control(sim) as ctl:
        assert ctl.post("/notify", json={"type": "test"}).json()["status"] == "not_sent"
        ctl.post("/notify", json={"type": "test", "url": hook.url, "token": "per-call"})
        ctl.put("/notify/target", json={"url": hook.url, "token": "configured"})
        assert ctl.get("/notify/target").json()["token"] == "<masked>"
        ctl.post("/notify", json={"type": "test"})
        finished(ctl, 3)
    tokens = [d.headers["authorization"] for d in hook.deliveries()]
    assert sorted(tokens) == ["Bearer configured", "Bearer per-call"]


def test_backup_job_run_sends_its_notification(notifying: SimServer, hook: Receiver) -> None:
    with control(notifying) as ctl:
        ran = ctl.post("/vzdump", json={"job": "backup-5f0c2a1e-7b3d", "fail": {"100": "broken"}})
        nodes = len(ran.json()["tasks"])
        finished(ctl, nodes)
    bodies = [d.json() for d in hook.deliveries()]
    assert len(bodies) == nodes
    assert nodes >= 2
    failed = [b for b in bodies if b["severity"] == "error"]
    assert len(failed) == 1
    assert "100     " in failed[0]["message"]
    assert all(b["fields"]["job-id"] == "backup-5f0c2a1e-7b3d" for b in bodies)
    assert all(b["title"].endswith("backup successful ") for b in bodies if b not in failed)


def test_churn_backups_write_a_volume_and_notify(sim: SimServer) -> None:
    cluster = sim.cluster
    now = cluster.clock()
    with cluster.lock:
        ok, bad = sorted(cluster.guests.values(), key=lambda g: g.vmid)[:2]
        for guest, result in ((ok, "OK"), (bad, "job errors")):
            task = cluster.start_task(
                guest.node, "vzdump", str(guest.vmid), "root@pam", now - 60, []
            )
            cluster.pending.append(PendingOp(now, "backup", guest.id, task.upid, result))
        complete_due(cluster, now)
        notices = cluster.health.take_outbox()
        newest = {v.vmid: v.ctime for v in cluster.health.backups.volumes}
    assert newest[ok.vmid] == int(now) - 60
    assert newest[bad.vmid] < int(now) - 60
    assert [(n.type, n.severity, "job-id" in n.fields) for n in notices] == [
        ("vzdump", "info", False),
        ("vzdump", "error", False),
    ]


@pytest.mark.parametrize(
    ("spec", "fixture"),
    [
        (
            {"type": "vzdump", "severity": "info", "job-id": "backup-a1b2c3d4-e5f6"},
            "synthetic-webhook-context-pve-vzdump-success.json",
        ),
        (
            {
                "type": "vzdump",
                "error": "could not activate storage 'nfs-bak': storage 'nfs-bak' is not online",
            },
            "synthetic-webhook-context-pve-vzdump-failed-single-error.json",
        ),
        (
            {
                "type": "replication",
                "job-id": "101-0",
                "target": "pve2",
                "schedule": "*/5",
                "fail_count": 3,
                "last_sync": 1729994600,
                "error": "command 'zfs snapshot rpool/data/vm-101-disk-0@"
                "__replicate_101-0_1729999400__' failed: got timeout",
            },
            "synthetic-webhook-context-pve-replication-failed.json",
        ),
        ({"type": "fencing", "hostname": "pve3"}, "synthetic-webhook-context-pve-fencing.json"),
        (
            {"type": "fencing", "hostname": "pve3", "succeeded": True},
            "synthetic-webhook-context-pve-fencing-succeeded.json",
        ),
        (
            {
                "type": "package-updates",
                "packages": [{"name": "pve-manager", "installed": "8.2.7", "available": "8.2.8"}],
            },
            "synthetic-webhook-context-pve-package-updates.json",
        ),
        (
            {
                "type": "system-mail",
                "subject": "Cron <root@pve1> test -x /usr/sbin/anacron || ...",
                "body": "...",
            },
            "synthetic-webhook-context-system-mail.json",
        ),
        ({"type": "test"}, "synthetic-webhook-context-pve-test.json"),
    ],
)
def test_pve_notifications_as_pve_renders_them(
    notifying: SimServer, spec: dict[str, Any], fixture: str
) -> None:
    real = captured(fixture)
    with control(notifying) as ctl:
        assert ctl.post("/notify", json={"hostname": "pve1"} | spec).status_code == 200
        (sent,) = finished(ctl)
    body = json.loads(sent["body"])
    expected_title = real["title"].replace(".example.lan", ".sim.lan")
    templated = spec["type"] != "system-mail"  # a forwarded mail's Subject is sent as is
    assert body["title"] == expected_title + (" " if templated else "")
    assert (body["severity"], body["fields"]) == (
        real["severity"],
        real["fields"]
        | ({"job-id": spec["job-id"]} if "job-id" in spec and spec["type"] == "vzdump" else {}),
    )
    if spec["type"] == "replication":
        assert body["message"] == real["message"]
    if spec["type"] == "package-updates":  # each column as wide as its widest cell + 4
        assert body["message"].splitlines()[2:4] == [
            "Package Name    Installed Version    Available Version    ",
            "pve-manager     8.2.7                8.2.8                ",
        ]


def test_pbs_notifications(notifying: SimServer) -> None:
    events = captured("synthetic-webhook-context-pbs-all.json")["events"]
    with control(notifying) as ctl:
        for event in events:
            fields = event["fields"]
            spec = {
                "source": "pbs",
                "type": fields["type"],
                "severity": event["severity"].split()[0],
            }
            spec |= {k: v for k, v in fields.items() if k in ("datastore", "job-id", "media-pool")}
            if fields["type"] == "sync":
                spec |= {"remote": "offsite", "remote-store": "remote-store"}
            if fields["type"] == "tape-load":
                spec |= {"label": "TAPE01", "drive": "lto8"}
            assert ctl.post("/notify", json=spec).status_code == 200, spec
        sent = finished(ctl, len(events))
    for event, record in zip(events, sent, strict=True):
        body = json.loads(record["body"])
        title = event["title"].replace("(pbs)", "(pbs.sim.lan)")
        assert body["title"] == title + " "
        assert body["fields"] == event["fields"]


def test_unknown_types_are_sent_as_given(notifying: SimServer) -> None:
    with control(notifying) as ctl:
        ctl.post(
            "/notify",
            json={
                "type": "custom-thing",
                "title": 'a "quoted"\ntitle',
                "message": "line1\nline2",
                "severity": "warning",
            },
        )
        (sent,) = finished(ctl)
    body = json.loads(sent["body"])
    assert (body["title"], body["message"], body["severity"]) == (
        'a "quoted"\ntitle',
        "line1\nline2",
        "warning",
    )
    assert body["fields"] == {"type": "custom-thing", "hostname": "pve1"}


def test_notice_records_keep_no_more_than_the_limit() -> None:
    notifier = Notifier()
    for i in range(MAX_KEPT + 5):
        notifier.submit(Notice("test", "info", "t", "m", {}, i))
    sent = notifier.sent()
    assert len(sent) == MAX_KEPT
    assert sent[0]["timestamp"] == 5


def test_pvewatch_simulate_notify_flags(hook: Receiver) -> None:
    """`pvewatch simulate --notify-url URL --notify-token T` sends to URL with T."""
    command = [sys.executable, "-m", "pvewatch", "simulate", "--listen", "127.0.0.1:0"]
    command += ["--no-tls", "--notify-url", hook.url, "--notify-token", NOTIFY_TOKEN]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            lines = [process.stdout.readline()]
            while "notify:" not in lines[-1] and lines[-1]:  # the banner's last line
                lines.append(process.stdout.readline())
            api_line = next(line for line in lines if "api:" in line)
            base = api_line.split()[-1].removesuffix("/api2/json")
            assert any(f"notify:      PVE notifications go to {hook.url}" in line for line in lines)
            with httpx.Client(base_url=base + "/_sim") as ctl:
                ctl.post("/notify", json={"type": "test"})
                finished(ctl)
        finally:
            process.terminate()
            process.wait(timeout=10)
    (delivery,) = hook.deliveries()
    assert delivery.headers["authorization"] == f"Bearer {NOTIFY_TOKEN}"
