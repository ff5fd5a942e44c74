"""The mqtt sink: each event published as JSON to `<prefix>/<cluster>/<type>` (QoS 1, not
retained), each resource's current state to the retained `<prefix>/<cluster>/state/<id>`,
and optionally Home Assistant discovery for nodes and guests (`mqtt_messages`).

An event counts as delivered only once the broker acknowledged it (PUBACK), and before
it the state of what changed in its cluster. The state comes from the store's last
snapshot, not from the event: an event carries only the field that changed, and the
snapshot is committed with the event, so it is at least as new. Each connection keeps
what it published; the first publish of a cluster over a connection is all of it, later
ones only what differs. `keep_state` (the row's `run`, beside delivery) does the same
every MIRROR_SECS without events, so the state topics are right from the first poll on,
after a restart of pvewatch or of a broker that lost its retained messages, and for
resources no event reached this sink about. A resource that is gone gets an empty
retained message (MQTT's way to delete it), and its discovery entry too.

What the broker says decides delivery (SinkError.retryable): not reachable, a refused
login (wrong password, unknown user: fixed on the broker or by a config reload, and the
queued events then go out) and a TLS failure are all retried, nothing is dead-lettered;
every attempt logs the reason, and `check-config --connect` says it at once. aiomqtt is
imported here and in `mqtt_connection` only; its errors become SinkError there, without
the password.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass

import aiomqtt

from pvewatch.config.types import Config
from pvewatch.errors import SinkError, StoreError
from pvewatch.model import Event, Resource, Snapshot
from pvewatch.net.probe import Check
from pvewatch.sinks import mqtt_messages as msg
from pvewatch.sinks.base import SinkContext, SinkType, Tried
from pvewatch.sinks.mqtt_connection import broken, connect, disconnect, reason
from pvewatch.sinks.mqtt_options import MQTT_KEYS, MqttOptions, mqtt_options
from pvewatch.store.base import Store

_SYNC_BATCH = 1000  # publishes of a state sync awaited together
MIRROR_SECS = 2.0  # how often the state topics catch up with the store without events
log = logging.getLogger("pvewatch")


@dataclass(frozen=True, slots=True)
class Publish:
    topic: str
    payload: bytes
    retain: bool


class MqttSink:
    """Publishes events, and the state of the resources, to one broker over one
    connection, opened when first needed and again after it broke."""

    groups = False

    def __init__(
        self,
        name: str,
        options: MqttOptions,
        store: Store | None = None,
        *,
        clusters: Callable[[], Collection[str]] = lambda: (),
        mirror_secs: float = MIRROR_SECS,
    ) -> None:
        self.name = name
        self.options = options
        self._store = store  # None (test-sink): events only, no state
        self._clusters = clusters  # whose state `keep_state` mirrors
        self._mirror_secs = mirror_secs
        self._client: aiomqtt.Client | None = None
        self._connecting = asyncio.Lock()
        self._mirroring = asyncio.Lock()
        # What the broker acknowledged over this connection: each cluster's resources
        # as published, and each discovery entry.
        self._published: dict[str, dict[str, Resource]] = {}
        self._announced: dict[str, bytes] = {}
        self._mirrored: dict[str, Snapshot] = {}  # the snapshot each cluster was compared to
        self._snapshots: dict[str, Snapshot] = {}  # the last read of each cluster
        self._closed = False

    @classmethod
    def build(cls, name: str, options: MqttOptions, context: SinkContext) -> MqttSink:
        """The sink of `options` (`mqtt_options` checked them); opens nothing."""
        return cls(name, options, context.store, clusters=context.clusters)

    @property
    def connected(self) -> bool:
        """A connection is open and has not broken."""
        return self._client is not None and not broken(self._client)

    async def send(self, events: Sequence[Event]) -> None:
        for event in events:
            await self.publish_event(event)

    async def publish_event(self, event: Event) -> str:
        """The state of the event's cluster where it changed (its resource's included),
        then the event; the event's topic once the broker acknowledged them all."""
        client = await self._connection()
        async with self._failing(client):
            if self._store is not None and event.cluster:
                gone = event.resource.id if event.resource is not None else None
                await self._mirror(client, event.cluster, gone)
            topic = msg.event_topic(self.options.topic_prefix, event)
            await self._publish(client, [Publish(topic, msg.event_payload(event), False)])
        return topic

    async def keep_state(self) -> None:
        """Run beside delivery until cancelled: every `mirror_secs`, the state topics of
        the clusters this replica delivers follow the store, events or not (the first
        poll, resources no event was sent about)."""
        failing = False
        while True:
            try:
                clusters = await asyncio.to_thread(self._stored, set(self._clusters()))
                if clusters:
                    client = await self._connection()
                    async with self._failing(client):
                        for cluster in clusters:
                            await self._mirror(client, cluster)
                failing = False
            except (SinkError, StoreError) as e:
                if not failing:
                    log.warning("sink %s: the state topics wait: %s", self.name, e)
                failing = True
            except Exception as e:  # a bug must not end the mirror; its text may hold secrets
                log.error("sink %s: unexpected %s keeping the state", self.name, type(e).__name__)
            await asyncio.sleep(self._mirror_secs)

    def _stored(self, wanted: set[str]) -> list[str]:
        assert self._store is not None
        return [s.cluster for s in self._store.status() if s.last_poll and s.cluster in wanted]

    async def _connection(self) -> aiomqtt.Client:
        if self._closed:
            raise SinkError(f"mqtt sink {self.name!r} is closed", retryable=False)
        async with self._connecting:
            if self._client is not None and broken(self._client):
                await disconnect(self._client)  # a broker restart: connect again at once
                self._client = None
            if self._client is None:
                self._client = await connect(self.options, f"pvewatch-{self.name}")
                self._published.clear()
                self._announced.clear()
                self._mirrored.clear()
            return self._client

    @contextlib.asynccontextmanager
    async def _failing(self, client: aiomqtt.Client) -> AsyncIterator[None]:
        """aiomqtt's errors as a retryable SinkError; the connection is dropped."""
        try:
            yield
        except aiomqtt.MqttError as e:
            async with self._connecting:
                if self._client is client:
                    self._client = None
            await disconnect(client)
            raise SinkError(
                f"{self.options.where}: {reason(e, self.options, 'publish')}", retryable=True
            ) from None

    async def _mirror(self, client: aiomqtt.Client, cluster: str, gone: str | None = None) -> None:
        """Publish the state of every resource of `cluster` that differs from what this
        connection published (all of them, the first time), and delete `gone` (an
        event's resource) if the store no longer holds it."""
        if self._store is None:
            return
        async with self._mirroring:
            snapshot = await self._snapshot(cluster)
            if snapshot is None:
                return
            published = self._published.setdefault(cluster, {})
            if self._mirrored.get(cluster) is snapshot:  # compared already: only `gone`
                changed = [gone] if gone is not None and gone not in snapshot.resources else []
            else:
                changed = msg.changes(snapshot.resources, published, gone)
            publishes = [p for rid in changed for p in self._state(cluster, rid, snapshot)]
            for start in range(0, len(publishes), _SYNC_BATCH):
                await self._publish(client, publishes[start : start + _SYNC_BATCH])
            for rid in changed:
                if rid in snapshot.resources:
                    published[rid] = snapshot.resources[rid]
                else:
                    published.pop(rid, None)
            self._mirrored[cluster] = snapshot

    async def _snapshot(self, cluster: str) -> Snapshot | None:
        """The cluster's last stored snapshot; the one read before while no poll has been
        stored since (a burst of events reads a large cluster once)."""
        store = self._store
        assert store is not None

        def read() -> Snapshot | None:
            stamp = next((s.last_poll for s in store.status() if s.cluster == cluster), None)
            kept = self._snapshots.get(cluster)
            if kept is not None and stamp is not None and kept.taken_at == stamp:
                return kept
            snapshot, _ = store.load(cluster)
            if snapshot is not None:
                self._snapshots[cluster] = snapshot
            return snapshot

        return await asyncio.to_thread(read)

    def _state(self, cluster: str, resource_id: str, snapshot: Snapshot) -> list[Publish]:
        """The retained state of one resource and its discovery entry where it changed;
        empty retained messages (deletions) when the snapshot no longer holds it."""
        options = self.options
        topic = msg.state_topic(options.topic_prefix, cluster, resource_id)
        resource = snapshot.resources.get(resource_id)
        state = Publish(topic, msg.state_payload(cluster, resource) if resource else b"", True)
        if options.discovery_prefix is None:
            return [state]
        config = msg.discovery_topic(options.discovery_prefix, cluster, resource_id)
        if resource is None:
            self._announced.pop(config, None)
            return [Publish(config, b"", True), state]
        if resource.type not in msg.DISCOVERED:
            return [state]
        payload = msg.discovery_payload(options.topic_prefix, cluster, resource)
        if self._announced.get(config) == payload:
            return [state]
        self._announced[config] = payload
        return [state, Publish(config, payload, True)]

    async def _publish(self, client: aiomqtt.Client, publishes: Sequence[Publish]) -> None:
        """Publish at QoS 1 and wait for every PUBACK (or MqttError)."""
        await asyncio.gather(
            *(client.publish(p.topic, p.payload, qos=1, retain=p.retain) for p in publishes)
        )

    async def aclose(self) -> None:
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await disconnect(client)


async def check_mqtt(options: MqttOptions, config: Config) -> list[Check]:
    """`check-config --connect`: connect, TLS and login (CONNACK), then disconnect;
    nothing is published."""
    try:
        client = await connect(options, "pvewatch-check")
    except SinkError as e:
        return [Check("fail", "connect", str(e))]
    await disconnect(client)
    how = "TLS verified" if options.tls_on else "plain, unencrypted"
    who = f"logged in as {options.username}" if options.username else "anonymous"
    return [Check("ok", "connect", f"{options.where}: connected ({how}), {who}; nothing published")]


async def try_mqtt(sink: MqttSink, event: Event) -> Tried:
    """`test-sink`: the sample event published for real, no state (it is not a real
    resource's); delivered once the broker acknowledged it."""
    topic = await sink.publish_event(event)
    lines = (f"sink {sink.name}: {sink.options.where} acknowledged (PUBACK) {event.id} on {topic}",)
    return Tried(True, lines)


MQTT = SinkType(
    options=MqttOptions,
    keys=MQTT_KEYS,
    parse=mqtt_options,
    build=MqttSink.build,
    run=MqttSink.keep_state,
    check=check_mqtt,
    test=try_mqtt,
)
