"""`type: alertmanager` against the real Alertmanager (Debian's prometheus-alertmanager,
started by the tests on loopback with a webhook receiver; tests.need: a skip without it,
a failure under CI=true): the alert shows in /api/v2/alerts with the webhook format's
labels and fingerprint, is routed to the receiver, resolves, is suppressed by a silence
made in Alertmanager, is pushed again from the store after a restart, and reaches both
of an HA pair. Answers Alertmanager gives only to a broken client (400) are HTTP tests
(respx)."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import yaml

from pvewatch.config.load import load_config
from pvewatch.config.types import Config, SinkConfig
from pvewatch.errors import ConfigError, SinkError
from pvewatch.lifecycle import daemon
from pvewatch.model import Severity, parse_time
from pvewatch.operate.connect import check_connections
from pvewatch.operate.deliveries import sink_test
from pvewatch.sinks.alertmanager import AlertmanagerSink
from pvewatch.sinks.am_alerts import Alert, AlertmanagerOptions, ended
from pvewatch.sinks.formats.alertmanager import alert_labels, fingerprint
from pvewatch.sinks.table import SINK_TYPES
from pvewatch.store.sqlite import SqliteStore
from pvewatch.watch.rules import open_conditions
from tests.config.support import base, commented_sink, write
from tests.e2e.harness import control, simulator, wait_for, watcher_config
from tests.e2e.receiver import Receiver, receiver
from tests.sinks.formats.test_alertmanager_real import alertmanager

from .contract import check_sink_contract, guest_started, guest_stopped

PROBLEM = replace(guest_stopped(), condition="guest.stopped:qemu/100")
FIXED = guest_started(PROBLEM)
RENAMED = replace(guest_stopped(), id="evt_renamed", type="guest.renamed", severity=Severity.INFO)
FP = fingerprint(alert_labels(PROBLEM))


@dataclasses.dataclass
class Am:
    client: httpx.Client
    hook: Receiver

    @property
    def url(self) -> str:
        return str(self.client.base_url).rstrip("/")

    def alerts(self) -> dict[str, dict[str, Any]]:
        """The alerts Alertmanager has, active or not, by fingerprint."""
        answer = self.client.get("/api/v2/alerts")
        answer.raise_for_status()
        return {a["fingerprint"]: a for a in answer.json()}

    def notified(self, status: str, fp: str) -> dict[str, Any] | None:
        for delivery in self.hook.deliveries():
            body: dict[str, Any] = delivery.json()
            if body["status"] == status and any(a["fingerprint"] == fp for a in body["alerts"]):
                return body
        return None


@pytest.fixture
def am(tmp_path: Path) -> Iterator[Am]:
    with receiver() as hook, alertmanager(tmp_path / "am", hook) as client:
        yield Am(client, hook)


@pytest.fixture(autouse=True)
def _am_dir(tmp_path: Path) -> None:
    (tmp_path / "am").mkdir()
    (tmp_path / "am2").mkdir()


def options(*urls: str, **changes: Any) -> AlertmanagerOptions:
    return AlertmanagerOptions(urls=urls, **changes)


def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "state.db")


# --- against the real Alertmanager -------------------------------------------------------


async def test_a_problem_fires_is_routed_and_resolves(tmp_path: Path, am: Am) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with store(tmp_path) as st:
        sink = AlertmanagerSink("am", options(am.url, resend_secs=30), st, clock=lambda: now)
        await sink.send([PROBLEM])
        alert = wait_for(lambda: am.alerts().get(FP), what="the alert in Alertmanager")
        assert alert["labels"] == alert_labels(PROBLEM)
        assert alert["status"]["state"] == "active"
        assert alert["annotations"]["summary"] == PROBLEM.summary
        assert alert["annotations"]["cause"] == "user"
        assert parse_time(alert["startsAt"]) == PROBLEM.time
        assert parse_time(alert["endsAt"]) == now + timedelta(seconds=120)
        wait_for(lambda: am.notified("firing", FP), what="the firing notification")
        assert list(st.sink_state("am")) == [FP]  # open: resent, and after a restart
        reminder = replace(PROBLEM, id="evt_reminder", time=now, details={"reminder": 1})
        await sink.send([reminder])  # the same alert: it keeps its startsAt
        assert parse_time(am.alerts()[FP]["startsAt"]) == PROBLEM.time
        assert json.loads(st.sink_state("am")[FP])["startsAt"] == "2026-11-28T01:02:03Z"
        await sink.send([RENAMED])  # an info event that is no problem: not pushed
        await sink.send([FIXED])
        assert st.sink_state("am") == {}
        resolved = wait_for(lambda: am.notified("resolved", FP), what="the resolution")
        (sent,) = resolved["alerts"]
        assert parse_time(sent["startsAt"]) == PROBLEM.time
        assert parse_time(sent["endsAt"]) == FIXED.time
        assert am.alerts() == {}  # resolved; and the info event made no alert
        notified = {a["fingerprint"] for d in am.hook.deliveries() for a in d.json()["alerts"]}
        assert notified == {FP}
        await sink.aclose()


async def test_a_silence_made_in_alertmanager_suppresses_it(tmp_path: Path, am: Am) -> None:
    now = datetime.now(UTC)
    silence = {
        "matchers": [{"name": "id", "value": "qemu/100", "isRegex": False, "isEqual": True}],
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
        "createdBy": "test",
        "comment": "maintenance of VM 100",
    }
    am.client.post("/api/v2/silences", json=silence).raise_for_status()
    assert PROBLEM.resource is not None
    other = replace(
        PROBLEM, id="evt_other", resource=replace(PROBLEM.resource, id="qemu/101", vmid=101)
    )
    sink = AlertmanagerSink("am", options(am.url), None)
    await sink.send([PROBLEM])
    await sink.send([other])
    other_fp = fingerprint(alert_labels(other))
    wait_for(lambda: am.notified("firing", other_fp), what="the unsilenced alert's notification")
    alert = am.alerts()[FP]
    assert alert["status"]["state"] == "suppressed"
    assert alert["status"]["silencedBy"]
    assert am.notified("firing", FP) is None
    await sink.aclose()


async def test_open_alerts_are_pushed_again_after_a_restart(tmp_path: Path) -> None:
    with store(tmp_path) as st, receiver() as hook:
        with alertmanager(tmp_path / "am", hook) as client:
            first = Am(client, hook)
            sink = AlertmanagerSink("am", options(first.url, resend_secs=1), st)
            await sink.send([PROBLEM])
            await sink.aclose()
        # pvewatch restarts, and meets an Alertmanager that knows nothing (new, or one that
        # timed the alert out): `run` pushes what is open from the store, then every resend.
        with alertmanager(tmp_path / "am2", hook) as client:
            second = Am(client, hook)
            sink = AlertmanagerSink("am", options(second.url, resend_secs=1), st)
            assert second.alerts() == {}
            task = asyncio.create_task(sink.run())
            try:
                alert = await _eventually(lambda: second.alerts().get(FP))
                ends = parse_time(alert["endsAt"])
                later = await _eventually(
                    lambda: (a := second.alerts().get(FP)) and parse_time(a["endsAt"]) > ends
                )
                assert later
            finally:
                task.cancel()
                await sink.aclose()


async def _eventually(condition: Any, timeout: float = 15.0) -> Any:
    """Await `condition()` being truthy (the sink's task runs meanwhile), or fail."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := condition()):
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)
    return value


async def test_each_of_an_ha_pair_gets_every_alert(tmp_path: Path) -> None:
    with (
        receiver() as hook1,
        receiver() as hook2,
        alertmanager(tmp_path / "am", hook1) as c1,
        alertmanager(tmp_path / "am2", hook2) as c2,
    ):
        a, b = Am(c1, hook1), Am(c2, hook2)
        sink = AlertmanagerSink("am", options(a.url, b.url), None)
        await sink.send([PROBLEM])
        assert FP in a.alerts()
        assert FP in b.alerts()
        await sink.aclose()


async def test_server_down_is_retried_and_check_and_test_sink(tmp_path: Path, am: Am) -> None:
    down = AlertmanagerSink("am", options("http://127.0.0.1:1"), None)
    with pytest.raises(SinkError) as caught:
        await down.send([PROBLEM])
    assert caught.value.retryable
    assert "http://127.0.0.1:1: cannot connect" in str(caught.value)
    await down.aclose()
    config = Config(clusters=(), sinks=(SinkConfig("am", "alertmanager", options(am.url)),))
    (section,) = await check_connections(config)
    ((status, what, message),) = [(c.status, c.what, c.message) for c in section.checks]
    assert (status, what) == ("ok", "connect")
    assert message.startswith(f"{am.url}: Alertmanager ")
    assert am.alerts() == {}  # the check pushed nothing
    pair = Config(
        clusters=(),
        sinks=(SinkConfig("am", "alertmanager", options(am.url, "http://127.0.0.1:1")),),
    )
    (section,) = await check_connections(pair)
    assert [c.status for c in section.checks] == ["ok", "fail"]
    assert section.checks[1].message.startswith("http://127.0.0.1:1: cannot connect")
    out, err = io.StringIO(), io.StringIO()
    assert await sink_test(config, "am", out=out, err=err) == 0, err.getvalue()
    (alert,) = am.alerts().values()
    assert alert["labels"]["test"] == "true"
    ends = parse_time(alert["endsAt"])
    assert timedelta(seconds=50) < ends - datetime.now(UTC) <= timedelta(seconds=60)
    assert "took the test alert PveGuestStopped" in out.getvalue()


async def test_the_daemon_pushes_what_the_rules_find(tmp_path: Path, am: Am) -> None:
    """Through the outbox: the stop the rules find is pushed; with `send_resolved: false`
    the start is not, and the next resend ends the alert, as the rules closed it."""
    with simulator() as sim:
        with control(sim) as c:
            c.patch("/resources/qemu/100", json={"status": "running"}).raise_for_status()
        sinks = (SinkConfig("am", "alertmanager", options(am.url), send_resolved=False),)
        config = dataclasses.replace(watcher_config(sim, tmp_path), sinks=sinks)
        assert await daemon.once(config) == 0  # the baseline
        with control(sim) as c:
            c.patch("/resources/qemu/100", json={"status": "stopped"}).raise_for_status()
        assert await daemon.once(config) == 0
        (alert,) = am.alerts().values()
        assert alert["labels"]["alertname"] == "PveGuestStopped"
        assert alert["labels"]["id"] == "qemu/100"
        assert alert["status"]["state"] == "active"
        with SqliteStore(config.store.path) as st:
            assert list(st.sink_state("am")) == [alert["fingerprint"]]
        with control(sim) as c:
            c.patch("/resources/qemu/100", json={"status": "running"}).raise_for_status()
        assert await daemon.once(config) == 0
    with SqliteStore(config.store.path) as st:
        sink = AlertmanagerSink("am", options(am.url), st)
        assert await sink.resend() == 0
        assert st.sink_state("am") == {}
        await sink.aclose()
    assert am.alerts() == {}
    wait_for(lambda: am.notified("resolved", alert["fingerprint"]), what="the resolution")


async def test_an_outage_of_alertmanager_loses_nothing(tmp_path: Path, am: Am) -> None:
    """The daemon's event waits in the outbox while Alertmanager is down, and goes once
    it is back."""
    with simulator() as sim:
        with control(sim) as c:
            c.patch("/resources/qemu/100", json={"status": "running"}).raise_for_status()
        base_config = watcher_config(sim, tmp_path)

        def config(url: str) -> Config:
            sinks = (SinkConfig("am", "alertmanager", options(url)),)
            return dataclasses.replace(base_config, sinks=sinks)

        assert await daemon.once(config(am.url)) == 0  # the baseline
        with control(sim) as c:
            c.patch("/resources/qemu/100", json={"status": "stopped"}).raise_for_status()
        assert await daemon.once(config("http://127.0.0.1:1")) == 0
    with SqliteStore(base_config.store.path) as st:
        (row,) = st.deliveries(sink="am")
        assert row.state == "pending"
        assert "cannot connect" in (row.last_error or "")
        st.requeue(sinks=["am"], event_id=row.event.id, now=datetime.now(UTC))
    # Delivery only (no cluster to poll): what waited goes.
    assert await daemon.once(dataclasses.replace(config(am.url), clusters=())) == 0
    (alert,) = am.alerts().values()
    assert alert["annotations"]["event_id"] == row.event.id
    with SqliteStore(base_config.store.path) as st:
        assert st.deliveries(sink="am") == []  # nothing pending, nothing dead


def test_an_alert_whose_condition_the_rules_closed_is_ended() -> None:
    def kept(cluster: str, condition: str | None) -> Alert:
        notes = {"summary": "x"} | ({"condition": condition} if condition else {})
        return Alert({"alertname": "PveX", "cluster": cluster}, notes, "t", "", None)

    alerts = {
        "open": kept("a", "node.offline:node/pve1"),
        "closed": kept("a", "guest.stopped:qemu/100"),
        "unknown cluster": kept("b", "guest.stopped:qemu/100"),
        "no state": kept("c", "guest.stopped:qemu/100"),
        "no condition": kept("a", None),
    }
    opened = {"a": frozenset({"node.offline:node/pve1"}), "c": None}
    assert ended(alerts, opened) == {"closed"}
    assert ended(alerts, {}) == set()


@pytest.mark.parametrize(
    ("state", "want"),
    [
        ({"shape": {"conditions": {"a:x": {}, "b": {}}}}, frozenset({"a:x", "b"})),
        ({"shape": {"conditions": {}}}, frozenset()),
        ({"shape": {}}, None),
        ({"shape": "damaged"}, None),
        ({}, None),
    ],
)
def test_open_conditions_are_read_from_the_rule_state(
    state: dict[str, Any], want: frozenset[str] | None
) -> None:
    assert open_conditions(state) == want


# --- answers only a broken client gets, the contract, the config -------------------------


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    """respx behind httpx's client, whatever transport the sink's client has."""
    with respx.mock(using="httpx") as router:
        yield router


async def test_a_400_is_dead_with_the_answer_and_a_5xx_retried(mock: respx.MockRouter) -> None:
    one, two = "http://am1:9093", "http://am2:9093"
    mock.post(f"{one}/api/v2/alerts").respond(400, json="start time must be before end time")
    ok = mock.post(f"{two}/api/v2/alerts").respond(200)
    sink = AlertmanagerSink("am", options(one, two), None)
    with pytest.raises(SinkError) as caught:
        await sink.send([PROBLEM])
    assert not caught.value.retryable
    assert "http://am1:9093 answered HTTP 400" in str(caught.value)
    assert "start time must be before end time" in str(caught.value)
    assert ok.call_count == 1  # the other of the pair still got it
    sent = json.loads(ok.calls[0].request.content)
    assert [a["labels"] for a in sent] == [alert_labels(PROBLEM)]
    mock.post(f"{one}/api/v2/alerts").respond(503)
    with pytest.raises(SinkError) as caught:
        await sink.send([PROBLEM])
    assert caught.value.retryable
    await sink.aclose()


async def test_it_meets_the_sink_contract(mock: respx.MockRouter) -> None:
    mock.post("http://am:9093/api/v2/alerts").respond(200)
    await check_sink_contract(lambda: AlertmanagerSink("am", options("http://am:9093"), None))


def test_the_config_reads_its_options_and_names_its_problems(tmp_path: Path) -> None:
    doc = {**base(), "sinks": {"am": {"type": "alertmanager", "urls": ["http://am1:9093/"]}}}
    (cfg,) = load_config(write(tmp_path, doc), {}, sink_types=SINK_TYPES).sinks
    assert cfg.options == AlertmanagerOptions(urls=("http://am1:9093",))
    doc["sinks"]["am"] = {
        "type": "alertmanager",
        "urls": ["ftp://am1", "http://u:p@am2:9093", "http://am3:9093", "http://am3:9093"],
        "resend_secs": 0,
    }
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, doc), {}, sink_types=SINK_TYPES)
    assert caught.value.problems == [
        "sinks.am.urls[0]: expected an http:// or https:// URL with a host",
        "sinks.am.urls[1]: a user, password or query in the URL is not supported",
        "sinks.am.urls: lists the same URL twice",
        "sinks.am.resend_secs: expected a number >= 1 and <= 3600, got 0",
    ]


def test_the_commented_alertmanager_sink_in_the_example_is_valid(tmp_path: Path) -> None:
    doc = yaml.safe_dump(base()) + "sinks:\n" + commented_sink("am")
    (cfg,) = load_config(write(tmp_path, doc), {}, sink_types=SINK_TYPES).sinks
    assert cfg.options == AlertmanagerOptions(
        urls=("http://am1:9093", "http://am2:9093"), resend_secs=60, timeout_secs=10
    )


async def test_a_failed_resend_is_logged_and_tried_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mock: respx.MockRouter
) -> None:
    route = mock.post("http://am:9093/api/v2/alerts")
    route.side_effect = [httpx.Response(503), httpx.Response(200)]
    with store(tmp_path) as st:
        seeded = AlertmanagerSink("am", options("http://am:9093"), st)
        with pytest.raises(SinkError):
            await seeded.push_event(PROBLEM)  # not taken: not kept
        assert st.sink_state("am") == {}
        await seeded.push_event(PROBLEM)
        await seeded.aclose()
        sink = AlertmanagerSink("am", options("http://am:9093", resend_secs=1), st)
        route.side_effect = [httpx.Response(503), httpx.Response(200)]
        task = asyncio.create_task(sink.run())
        try:
            await _eventually(lambda: route.call_count >= 4)  # 2 pushes, 2 resends
        finally:
            task.cancel()
            await sink.aclose()
    assert "open alerts not resent: http://am:9093 answered HTTP 503" in caplog.text
    (resent,) = json.loads(route.calls[-1].request.content)
    assert resent["labels"] == alert_labels(PROBLEM)
