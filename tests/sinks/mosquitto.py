"""A real Mosquitto for the tests, started on free loopback ports with a generated config:
a password file (mosquitto_passwd), no anonymous access, a plain listener and a TLS one
whose certificate a test CA signed; persistence on, so retained messages and persistent
sessions survive `stop()` + `start()`. And a subscriber (paho, in its own thread) that
keeps every message it gets."""

from __future__ import annotations

import contextlib
import getpass
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.e2e.harness import wait_for
from tests.faults.certs import issue, make_authority
from tests.need import tool

USER, PASSWORD = "pvewatch", "s3cret-mqtt-pass"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


@dataclass
class Broker:
    dir: Path
    port: int = field(default_factory=free_port)
    tls_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def ca_file(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        return f"mqtts://127.0.0.1:{self.tls_port}"

    def prepare(self) -> None:
        binary = tool("mosquitto", "/usr/sbin/mosquitto")  # sbin: not on a user's PATH
        passwd = tool("mosquitto_passwd")
        self.dir.mkdir(parents=True, exist_ok=True)
        ca = make_authority("pvewatch mqtt test CA")
        server = issue(ca)
        self.ca_file.write_bytes(ca.cert_pem)
        (self.dir / "server.pem").write_bytes(server.cert_pem)
        (self.dir / "server.key").write_bytes(server.key_pem)
        (self.dir / "passwd").touch()
        subprocess.run(
            [passwd, "-b", str(self.dir / "passwd"), USER, PASSWORD], check=True, timeout=20
        )
        d = self.dir
        (d / "mosquitto.conf").write_text(
            # As root it would drop to the mosquitto user, who cannot read pytest's tmp.
            f"user {getpass.getuser()}\n"
            f"persistence true\npersistence_location {d}/\nallow_anonymous false\n"
            f"password_file {d}/passwd\nlog_dest file {d}/mosquitto.log\n"
            f"listener {self.port} 127.0.0.1\n"
            f"listener {self.tls_port} 127.0.0.1\ncafile {self.ca_file}\n"
            f"certfile {d}/server.pem\nkeyfile {d}/server.key\n"
        )
        self._binary = binary

    def start(self) -> Broker:
        self.proc = subprocess.Popen(
            [self._binary, "-c", str(self.dir / "mosquitto.conf")],
            stdout=subprocess.DEVNULL,
            stderr=(self.dir / "stderr.log").open("ab"),
        )
        proc = self.proc

        def listening() -> bool:
            if proc.poll() is not None:
                log = (self.dir / "stderr.log").read_text()[-500:]
                raise AssertionError(f"mosquitto exited with {proc.returncode}: {log}")
            return _accepts(self.port) and _accepts(self.tls_port)

        wait_for(listening, timeout=15, what="mosquitto to listen")
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@contextlib.contextmanager
def mosquitto(tmp: Path) -> Iterator[Broker]:
    broker = Broker(tmp / "mosquitto")
    broker.prepare()
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool


class Subscriber:
    """Subscribes to `topic` (QoS 1) on the broker's plain listener and keeps what
    arrives. `persistent`: a session the broker keeps while it is away (messages
    published meanwhile are queued for it); it reconnects by itself."""

    def __init__(self, broker: Broker, topic: str, *, persistent: bool = False) -> None:
        self._lock = threading.Lock()
        self._got: list[Received] = []
        self._topic = topic
        self._subscribed = threading.Event()
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"test-subscriber-{time.monotonic_ns()}",
            clean_session=not persistent,
        )
        self._client.username_pw_set(USER, PASSWORD)
        self._client.reconnect_delay_set(1, 1)
        self._client.on_connect = lambda c, *_: c.subscribe(self._topic, qos=1)
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.connect("127.0.0.1", broker.port)
        self._client.loop_start()
        assert self._subscribed.wait(10), "the subscriber could not subscribe"

    def _on_message(self, client: paho.Client, userdata: object, m: paho.MQTTMessage) -> None:
        with self._lock:
            self._got.append(Received(m.topic, bytes(m.payload), bool(m.retain)))

    def received(self) -> list[Received]:
        with self._lock:
            return list(self._got)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@contextlib.contextmanager
def subscribed(broker: Broker, topic: str, *, persistent: bool = False) -> Iterator[Subscriber]:
    sub = Subscriber(broker, topic, persistent=persistent)
    try:
        yield sub
    finally:
        sub.close()
