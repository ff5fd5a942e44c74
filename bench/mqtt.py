"""What the mqtt sink costs with a large cluster, against a real Mosquitto (started on
free loopback ports with TLS and a password file, as the tests do: needs Debian's
`mosquitto`). Not part of `make bench`; a measurement, not a test.

    python -m bench.mqtt [--guests 1000 10000] [--events 200]

For each size: the first event of a connection (connect, TLS, login, then the retained
state of every guest and its Home Assistant discovery entry, then the event, all
acknowledged), and then the mean time of one more event (the cluster compared with what
the connection published, the event published and acknowledged).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from pvewatch.config.types import TlsConfig
from pvewatch.model import Resource, Snapshot, SourceHealth
from pvewatch.secret import Secret
from pvewatch.sinks.mqtt import MqttSink
from pvewatch.sinks.mqtt_options import MqttOptions
from pvewatch.store.sqlite import SqliteStore
from tests.sinks.contract import guest_stopped
from tests.sinks.mosquitto import PASSWORD, USER, Broker


async def measure(tmp: Path, broker: Broker, guests: int, events: int) -> str:
    with SqliteStore(tmp / f"state-{guests}.db") as store:
        resources = {
            f"qemu/{i}": Resource(f"qemu/{i}", "qemu", "running", "pve1", f"vm{i}", i)
            for i in range(100, 100 + guests)
        }
        snapshot = Snapshot("lab", resources, datetime.now(UTC))
        store.commit_poll("lab", snapshot=snapshot, events=[], sinks=[], health=SourceHealth())
        options = MqttOptions(
            host="127.0.0.1",
            port=broker.tls_port,
            tls_on=True,
            username=USER,
            password=Secret(PASSWORD),
            tls=TlsConfig(ca_file=broker.ca_file),
            topic_prefix=f"bench{guests}",
            discovery_prefix=f"ha{guests}",
        )
        sink = MqttSink("bench", options, store)
        try:
            start = time.perf_counter()
            await sink.send([guest_stopped(100, cluster="lab")])
            first = time.perf_counter() - start
            start = time.perf_counter()
            for i in range(events):
                await sink.send([guest_stopped(100 + i % guests, cluster="lab")])
            each = (time.perf_counter() - start) / events
        finally:
            await sink.aclose()
    return (
        f"{guests:>6} guests: first event {first * 1000:7.0f} ms "
        f"({2 * guests} retained messages); then {each * 1000:.1f} ms per event"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guests", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--events", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        broker = Broker(Path(d) / "mosquitto")
        broker.prepare()
        broker.start()
        try:
            for guests in args.guests:
                print(asyncio.run(measure(Path(d), broker, guests, args.events)))
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
