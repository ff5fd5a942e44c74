"""`type: mqtt`: its options (problems named by key path, the password never shown), its
topics and payloads (pure), and the sink against a real Mosquitto (tests/sinks/
mosquitto.py): the shared contract, events and retained state acknowledged by PUBACK,
Home Assistant discovery, and each failure's outcome: a refused login and a TLS mismatch
are retried with a clear reason, a broker down is retried and then delivered."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvewatch.config.load import check_config
from pvewatch.config.types import Config, SinkConfig, TlsConfig
from pvewatch.errors import SinkError
from pvewatch.model import Resource, Snapshot, SourceHealth
from pvewatch.operate.connect import check_connections
from pvewatch.operate.deliveries import sink_test
from pvewatch.secret import Secret
from pvewatch.sinks import mqtt_messages as msg
from pvewatch.sinks.base import SinkContext
from pvewatch.sinks.mqtt import MQTT, MqttSink
from pvewatch.sinks.mqtt_options import MqttOptions, topic_problem
from pvewatch.sinks.table import SINK_TYPES
from pvewatch.store.base import Store
from pvewatch.store.sqlite import SqliteStore
from tests.config.support import base, ca_pem, load, problems, write
from tests.e2e.harness import wait_for

from .contract import check_sink_contract, guest_stopped
from .mosquitto import PASSWORD, USER, Broker, Received, mosquitto, subscribed

# --- options ---------------------------------------------------------------------------


def broker_doc(**options: Any) -> dict[str, Any]:
    return {**base(), "sinks": {"broker": {"type": "mqtt", **options}}}


def mqtt(tmp_path: Path, **options: Any) -> MqttOptions:
    (sink,) = load(tmp_path, broker_doc(**options)).sinks
    assert isinstance(sink.options, MqttOptions)
    return sink.options


def test_defaults_and_every_option(tmp_path: Path) -> None:
    assert mqtt(tmp_path, url="mqtt://broker.lan") == MqttOptions(host="broker.lan", port=1883)
    (tmp_path / "mqtt.pass").write_text("hunter2\n")
    ca = ca_pem(tmp_path)
    options = mqtt(
        tmp_path,
        url="mqtts://broker.example.net",
        username="pvewatch",
        password_file="mqtt.pass",
        tls={"ca_file": "ca.pem"},
        topic_prefix="home/pve",
        homeassistant={"discovery_prefix": "ha"},
        timeout_secs=3,
    )
    assert options == MqttOptions(
        host="broker.example.net",
        port=8883,
        tls_on=True,
        username="pvewatch",
        password=Secret("hunter2"),
        tls=TlsConfig(ca_file=ca),
        topic_prefix="home/pve",
        discovery_prefix="ha",
        timeout_secs=3,
    )
    assert options.where == "mqtts://broker.example.net:8883"
    assert mqtt(tmp_path, url="mqtt://b:1999", homeassistant=True).discovery_prefix == (
        "homeassistant"
    )


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, "sinks.broker.url: required"),
        ({"url": "http://b"}, "sinks.broker.url: expected mqtt://HOST[:PORT] or mqtts://"),
        ({"url": "mqtt://b:99999"}, "sinks.broker.url: not a valid URL"),
        ({"url": "mqtt://u:p@b"}, "sinks.broker.url: no credentials in the URL"),
        ({"url": "mqtt://b/topic"}, "sinks.broker.url: a broker URL has no path"),
        ({"url": "mqtt://b", "password": "x"}, "sinks.broker.password: a password needs a user"),
        ({"url": "mqtt://b", "username": ""}, "sinks.broker.username: must not be empty"),
        ({"url": "mqtt://b", "tls": {"verify": False}}, "sinks.broker.tls: only for mqtts://"),
        ({"url": "mqtt://b", "topic_prefix": "a/#"}, "sinks.broker.topic_prefix: must not"),
        ({"url": "mqtt://b", "topic_prefix": "/a"}, "sinks.broker.topic_prefix: must not start"),
        ({"url": "mqtt://b", "topic_prefix": "$SYS"}, "sinks.broker.topic_prefix: must not"),
        (
            {"url": "mqtt://b", "homeassistant": {"discovery_prefix": "ha/+"}},
            "sinks.broker.homeassistant.discovery_prefix: must not contain",
        ),
        (
            {"url": "mqtt://b", "homeassistant": {"prefix": "x"}},
            "sinks.broker.homeassistant.prefix",
        ),
        ({"url": "mqtt://b", "homeassistant": "yes"}, "sinks.broker.homeassistant: expected"),
        ({"url": "mqtt://b", "timeout_secs": 0}, "sinks.broker.timeout_secs: "),
        ({"url": "mqtts://b", "password_file": "missing"}, "sinks.broker.password_file: cannot"),
    ],
)
def test_problems_name_the_key(tmp_path: Path, options: dict[str, Any], expected: str) -> None:
    found = problems(tmp_path, broker_doc(**options))
    assert any(p.startswith(expected) for p in found), found


def test_the_password_is_never_shown(tmp_path: Path) -> None:
    doc = broker_doc(url="mqtt://b", username="u", password="TOPSECRET-4711")
    out, err = io.StringIO(), io.StringIO()
    assert check_config(write(tmp_path, doc), {}, out, err, sink_types=SINK_TYPES) == 0
    assert "TOPSECRET" not in out.getvalue() + err.getvalue()
    assert "plain mqtt://: the password travels unencrypted" in out.getvalue() + err.getvalue()


# --- topics and payloads ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("cluster", "resource_id", "topic"),
    [
        ("lab", "qemu/100", "pvewatch/lab/state/qemu/100"),
        ("lab", "node/pve1", "pvewatch/lab/state/node/pve1"),
        ("lab", "storage/pve1/local-zfs", "pvewatch/lab/state/storage/pve1/local-zfs"),
        ("lab", "/pool/prod", "pvewatch/lab/state/pool/prod"),
        ("a/b", "sdn/pve1/z+#", "pvewatch/a_b/state/sdn/pve1/z__"),
        ("", "x\x00", "pvewatch/_/state/x_"),
    ],
)
def test_state_topics(cluster: str, resource_id: str, topic: str) -> None:
    assert msg.state_topic("pvewatch", cluster, resource_id) == topic


def test_event_topic_and_payload() -> None:
    event = guest_stopped(100, cluster="lab")
    assert msg.event_topic("pve", event) == "pve/lab/guest.stopped"
    assert json.loads(msg.event_payload(event)) == event.to_dict()


@given(st.text(), st.text())
def test_every_topic_is_a_valid_topic_name(cluster: str, resource_id: str) -> None:
    for topic in (
        msg.state_topic("pvewatch", cluster, resource_id),
        msg.discovery_topic("homeassistant", cluster, resource_id),
    ):
        assert topic_problem(topic) is None, topic
        topic.encode("utf-8")  # no lone surrogate


@given(st.text(), st.text(), st.text(), st.text())
def test_unique_ids_differ_for_different_resources(c1: str, r1: str, c2: str, r2: str) -> None:
    assert (msg.unique_id(c1, r1) == msg.unique_id(c2, r2)) == ((c1, r1) == (c2, r2))


A = Resource("qemu/100", "qemu", "running")
B = Resource("qemu/101", "qemu", "stopped")
B_RUNNING = Resource("qemu/101", "qemu", "running")


@pytest.mark.parametrize(
    ("resources", "published", "gone", "expected"),
    [
        ({"qemu/100": A}, {}, None, ["qemu/100"]),  # the first time: everything
        ({"qemu/100": A}, {"qemu/100": A}, None, []),  # nothing changed: nothing
        ({"qemu/101": B_RUNNING}, {"qemu/101": B}, None, ["qemu/101"]),  # changed
        ({}, {"qemu/101": B}, None, ["qemu/101"]),  # gone since published
        ({}, {}, "qemu/101", ["qemu/101"]),  # gone before this connection: its event says
        ({"qemu/101": B}, {"qemu/101": B}, "qemu/101", []),  # an event's resource, unchanged
    ],
)
def test_changes(
    resources: dict[str, Resource],
    published: dict[str, Resource],
    gone: str | None,
    expected: list[str],
) -> None:
    assert msg.changes(resources, published, gone) == expected


def test_state_and_discovery_payloads() -> None:
    vm = Resource("qemu/100", "qemu", "running", "pve1", "web1", 100)
    state = json.loads(msg.state_payload("lab", vm))
    assert state == {"cluster": "lab", **vm.to_dict(), "running": True}
    node = Resource("node/pve2", "node", "offline", "pve2")
    assert json.loads(msg.state_payload("lab", node))["running"] is False
    pool = Resource("/pool/prod", "pool")
    assert json.loads(msg.state_payload("lab", pool))["running"] is None
    config = json.loads(msg.discovery_payload("pvewatch", "lab", vm))
    assert config["state_topic"] == "pvewatch/lab/state/qemu/100"
    assert config["device_class"] == "running"
    assert config["unique_id"] == msg.unique_id("lab", "qemu/100") + "_running"
    assert config["device"]["name"] == "lab web1 (100)"


# --- against a real Mosquitto ----------------------------------------------------------


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with mosquitto(tmp_path) as b:
        yield b


def options_for(broker: Broker, **overrides: Any) -> MqttOptions:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": broker.tls_port,
        "tls_on": True,
        "username": USER,
        "password": Secret(PASSWORD),
        "tls": TlsConfig(ca_file=broker.ca_file),
        "timeout_secs": 5.0,
    }
    return MqttOptions(**(settings | overrides))


def events_of(got: list[Received]) -> list[dict[str, Any]]:
    """The events among what a subscriber got (not states, not discovery)."""
    return [
        json.loads(r.payload)
        for r in got
        if r.topic.startswith("pvewatch/") and "/state/" not in r.topic
    ]


async def test_the_sink_contract(broker: Broker) -> None:
    await check_sink_contract(lambda: MqttSink("broker", options_for(broker)))


async def test_events_and_retained_state_with_discovery(tmp_path: Path, broker: Broker) -> None:
    t0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    vm = Resource("qemu/100", "qemu", "stopped", "pve1", "web1", 100)
    quiet = Resource("qemu/101", "qemu", "running", "pve1", "db", 101)
    node = Resource("node/pve1", "node", "online", "pve1")

    def poll(at: datetime, *resources: Resource) -> None:
        snapshot = Snapshot("lab", {r.id: r for r in resources}, at)
        store.commit_poll("lab", snapshot=snapshot, events=[], sinks=[], health=SourceHealth())

    options = options_for(broker, discovery_prefix="homeassistant")
    with SqliteStore(tmp_path / "state.db") as store:
        poll(t0, vm, quiet, node)
        sink = MqttSink("broker", options, store)
        with subscribed(broker, "#") as sub:
            await sink.send([guest_stopped(100, cluster="lab")])
            wait_for(lambda: events_of(sub.received()), what="the event")
            got = sub.received()
        assert [e["id"] for e in events_of(got)] == [guest_stopped(100).id]
        # A late subscriber sees the state of every resource, the quiet ones too, at once.
        with subscribed(broker, "#") as late:
            wait_for(lambda: len(late.received()) == 6, what="3 states, 3 discovery configs")
            retained = {r.topic: json.loads(r.payload) for r in late.received()}
        assert all(r.retain for r in late.received())
        assert retained["pvewatch/lab/state/qemu/100"]["running"] is False
        assert retained["pvewatch/lab/state/qemu/101"]["running"] is True
        config = retained[msg.discovery_topic("homeassistant", "lab", "qemu/100")]
        assert config["state_topic"] == "pvewatch/lab/state/qemu/100"
        # The VM goes (a later poll, same connection): its state and discovery entry are
        # deleted with the next event.
        poll(t0 + timedelta(seconds=10), quiet, node)
        await sink.send([guest_stopped(100, cluster="lab")])
        await sink.aclose()
        # The other VM goes while pvewatch is down: after the restart, the event about
        # it deletes its topics (this connection never published them).
        poll(t0 + timedelta(seconds=20), node)
        sink = MqttSink("broker", options, store)
        await sink.send([guest_stopped(101, cluster="lab")])
        await sink.aclose()
    with subscribed(broker, "#") as last:
        wait_for(lambda: len(last.received()) >= 2, what="the node's two messages")
        assert {r.topic for r in last.received()} == {
            "pvewatch/lab/state/node/pve1",
            msg.discovery_topic("homeassistant", "lab", "node/pve1"),
        }


async def test_the_state_follows_the_store_without_events(tmp_path: Path, broker: Broker) -> None:
    t0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    guests = [Resource(f"qemu/{i}", "qemu", "running", "pve1", f"vm{i}", i) for i in (1, 2)]
    with SqliteStore(tmp_path / "state.db") as store:

        def poll(at: datetime, *resources: Resource) -> None:
            snapshot = Snapshot("lab", {r.id: r for r in resources}, at)
            store.commit_poll("lab", snapshot=snapshot, events=[], sinks=[], health=SourceHealth())

        poll(t0, *guests)  # a first poll: a baseline, no events
        sink = MqttSink(
            "broker", options_for(broker), store, clusters=lambda: {"lab"}, mirror_secs=0.05
        )
        with subscribed(broker, "pvewatch/lab/state/#") as sub:
            task = asyncio.create_task(sink.keep_state())
            try:

                def states() -> dict[str, Any]:
                    return {r.topic: json.loads(r.payload) for r in sub.received()}

                await until(lambda: len(states()) == 2)
                stopped = Resource("qemu/2", "qemu", "stopped", "pve1", "vm2", 2)
                poll(t0 + timedelta(seconds=10), guests[0], stopped)  # an event went elsewhere
                await until(
                    lambda: states().get("pvewatch/lab/state/qemu/2", {}).get("running") is False
                )
                assert len(sub.received()) == 3, "only what changed is published again"
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await sink.aclose()


class CountingStore:
    """A store that counts the rounds of `keep_state` (each asks for the status)."""

    def __init__(self, store: SqliteStore) -> None:
        self.store, self.rounds = store, 0

    def status(self) -> Any:
        self.rounds += 1
        return self.store.status()

    def load(self, cluster: str) -> Any:
        return self.store.load(cluster)


async def test_the_state_waits_for_a_broker_that_is_down_and_says_so_once(
    tmp_path: Path, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    vm = Resource("qemu/1", "qemu", "running", "pve1", "vm1", 1)
    with SqliteStore(tmp_path / "state.db") as sqlite:
        snapshot = Snapshot("lab", {vm.id: vm}, datetime(2026, 12, 1, tzinfo=UTC))
        sqlite.commit_poll("lab", snapshot=snapshot, events=[], sinks=[], health=SourceHealth())
        store = CountingStore(sqlite)
        sink = MqttSink(
            "broker", options_for(broker), cast(Store, store), clusters=lambda: {"lab"},
            mirror_secs=0.02,
        )  # fmt: skip
        broker.stop()
        task = asyncio.create_task(sink.keep_state())
        try:
            await until(lambda: store.rounds >= 5)
            waits = [r for r in caplog.records if "the state topics wait" in r.getMessage()]
            assert len(waits) == 1, "one warning per outage, not one per round"
            assert "cannot connect" in waits[0].getMessage()
            broker.start()
            with subscribed(broker, "pvewatch/lab/state/#") as sub:
                await until(lambda: bool(sub.received()))
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await sink.aclose()


async def test_a_refused_login_is_retried_with_the_reason(broker: Broker) -> None:
    sink = MqttSink("broker", options_for(broker, password=Secret("wrong-password")))
    with pytest.raises(SinkError) as caught:
        await sink.send([guest_stopped()])
    await sink.aclose()
    assert caught.value.retryable
    assert "refused the login" in str(caught.value)
    assert "wrong-password" not in str(caught.value)


async def test_a_tls_mismatch_is_a_clear_error(tmp_path: Path, broker: Broker) -> None:
    other_ca = ca_pem(tmp_path)  # a CA that did not sign the broker's certificate
    for tls in (TlsConfig(), TlsConfig(ca_file=other_ca)):
        sink = MqttSink("broker", options_for(broker, tls=tls))
        with pytest.raises(SinkError) as caught:
            await sink.send([guest_stopped()])
        await sink.aclose()
        assert caught.value.retryable
        assert "TLS: the broker's certificate is not trusted" in str(caught.value)
        assert "check tls.ca_file" in str(caught.value)


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for `condition` while the event loop runs (the sink's socket callbacks)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def test_a_broker_down_is_retried_then_delivered(broker: Broker) -> None:
    sink = MqttSink("broker", options_for(broker))
    with subscribed(broker, "pvewatch/#", persistent=True) as sub:
        await sink.send([guest_stopped(100)])
        broker.stop()
        await until(lambda: not sink.connected)
        with pytest.raises(SinkError) as caught:
            await sink.send([guest_stopped(101)])
        assert caught.value.retryable
        assert "cannot connect" in str(caught.value)
        broker.start()
        await sink.send([guest_stopped(101)])  # the retry: a new connection
        # A broker restart between two events: the next one connects again at once.
        broker.stop()
        await until(lambda: not sink.connected)
        broker.start()
        await sink.send([guest_stopped(102)])
        await sink.aclose()

        # The broker may deliver one again after its restart (at least once): ids count.
        def ids() -> list[str]:
            return list(dict.fromkeys(e["id"] for e in events_of(sub.received())))

        wait_for(lambda: len(ids()) == 3, what="the three events")
    assert ids() == [guest_stopped(i).id for i in (100, 101, 102)]


async def test_check_connect_logs_in_and_publishes_nothing(broker: Broker) -> None:
    good = SinkConfig("broker", "mqtt", options_for(broker))
    bad = SinkConfig("bad", "mqtt", options_for(broker, password=Secret("nope")))
    config = Config(clusters=(), sinks=(good, bad))
    with subscribed(broker, "#") as sub:
        ok, refused = await check_connections(config)
        assert sub.received() == []
    assert [c.status for c in ok.checks] == ["ok"]
    assert f"{broker.tls_url}: connected (TLS verified), logged in as {USER}" in (
        ok.checks[0].message
    )
    assert [c.status for c in refused.checks] == ["fail"]
    assert "refused the login" in refused.checks[0].message


async def test_test_sink_publishes_a_sample_and_no_state(broker: Broker) -> None:
    config = Config(clusters=(), sinks=(SinkConfig("broker", "mqtt", options_for(broker)),))
    out, err = io.StringIO(), io.StringIO()
    with subscribed(broker, "#") as sub:
        assert await sink_test(config, "broker", out=out, err=err) == 0
        wait_for(lambda: sub.received(), what="the sample")
        (got,) = sub.received()
    assert "/state/" not in got.topic
    assert json.loads(got.payload)["details"] == {"test": True}
    assert "acknowledged (PUBACK)" in out.getvalue()


def test_the_row_builds_the_sink() -> None:
    sink = MQTT.open(SinkConfig("b", "mqtt", MqttOptions()), SinkContext()).sink
    assert isinstance(sink, MqttSink)
