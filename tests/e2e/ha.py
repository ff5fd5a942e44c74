"""Replicas of `pvewatch run` (subprocesses) sharing one PostgreSQL database and the
clusters of one simulator, with a Standard Webhooks receiver: start them, find out who
leads what, kill or cut them off, and check the delivered stream."""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from pvewatch.config.types import PostgresConfig
from pvewatch.model import Event
from pvewatch.simulator.server import SimServer
from pvewatch.store.base import ClusterStatus
from pvewatch.store.pg_leader import application_name
from pvewatch.store.postgres import PostgresStore
from tests.e2e.harness import TOKEN, control
from tests.e2e.receiver import SECRET, Receiver

LEADER_CHECK_SECS = 0.5
_LISTENING = re.compile(r"serving /metrics, /healthz,? (?:and )?/readyz.* on (http://\S+)")


def write_config(
    tmp: Path, sim: SimServer, pg: PostgresConfig, hook: Receiver, clusters: int
) -> Path:
    """One watch.yaml for every replica: `clusters` clusters (all of `sim`), the store in
    PostgreSQL, a webhook to `hook`, a listener on a free port."""
    assert sim.fingerprint is not None
    assert pg.dsn is not None
    (tmp / "token").write_text(TOKEN + "\n")
    entries = [
        {
            "name": f"ha{i}",
            "endpoints": [sim.url],
            "tls": {"fingerprint": sim.fingerprint},
            "token_file": str(tmp / "token"),
            "interval_secs": 1,
            "timeout_secs": 2,
        }
        for i in range(1, clusters + 1)
    ]
    config = {
        "clusters": entries,
        "store": {
            "type": "postgres",
            "dsn": pg.dsn.reveal(),
            "leader_check_secs": LEADER_CHECK_SECS,
        },
        "http": {"listen": "127.0.0.1:0"},
        "sinks": {
            "hook": {
                "type": "webhook",
                "url": hook.url,
                "secret": SECRET,
                "retry": {"initial_secs": 0.2, "max_secs": 1},
            }
        },
    }
    path = tmp / "watch.yaml"
    path.write_text(json.dumps(config))
    return path


@dataclass
class Replica:
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def id(self) -> str:
        return f"{socket.gethostname()}:{self.proc.pid}"

    @property
    def application_name(self) -> str:
        return application_name(self.id)

    def url(self) -> str | None:
        """The listener's URL, once it said it."""
        found = _LISTENING.search(self.log.read_text(errors="replace"))
        return found.group(1) if found else None

    def get(self, path: str) -> httpx.Response:
        url = self.url()
        assert url is not None, f"replica {self.id} has no listener yet"
        return httpx.get(url + path, timeout=5)

    def leader_series(self) -> dict[str, float]:
        """pvewatch_cluster_leader of its /metrics: cluster → 1 or 0."""
        text = self.get("/metrics").text
        found = re.findall(r'^pvewatch_cluster_leader\{cluster="([^"]+)"\} (\S+)$', text, re.M)
        return {cluster: float(value) for cluster, value in found}


@dataclass
class Replicas:
    config: Path
    tmp: Path
    started: list[Replica] = field(default_factory=list)

    def start(self) -> Replica:
        n = len(self.started)
        log = self.tmp / f"replica{n}.log"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pvewatch",
                "run",
                "-c",
                str(self.config),
                "--log-level",
                "info",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log.open("ab"),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        replica = Replica(proc, log)
        self.started.append(replica)
        return replica

    def by_id(self, replica_id: str) -> Replica:
        return next(r for r in self.started if r.id == replica_id)

    def stop_all(self) -> None:
        for replica in self.started:
            if replica.proc.poll() is None:
                replica.proc.send_signal(signal.SIGTERM)
        for replica in self.started:
            try:
                replica.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                replica.proc.kill()
                replica.proc.wait()

    def logs(self) -> str:
        return "\n".join(
            f"--- {r.id}\n{r.log.read_text(errors='replace')[-4000:]}" for r in self.started
        )


@contextmanager
def replicas(config: Path, tmp: Path) -> Iterator[Replicas]:
    group = Replicas(config, tmp)
    try:
        yield group
    finally:
        group.stop_all()


def status(pg: PostgresConfig) -> dict[str, ClusterStatus]:
    with PostgresStore(pg) as store:
        return {s.cluster: s for s in store.status()}


def stored(pg: PostgresConfig) -> list[Event]:
    with PostgresStore(pg) as store:
        return store.events(limit=1_000_000)


class Churn:
    """Changes the simulated guests' tags from a thread until stopped: events flow."""

    def __init__(self, sim: SimServer, seed: int = 10) -> None:
        self._sim = sim
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        with control(sim) as c:
            rows = c.get("/resources").json()
        self._guests = sorted(r["id"] for r in rows if r["type"] in ("qemu", "lxc"))
        self._tags = dict.fromkeys(self._guests, "red")
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Churn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with control(self._sim) as c:
            while not self._stop.wait(self._rng.uniform(0.05, 0.25)):
                guest = self._rng.choice(self._guests)
                self._tags[guest] = "blue" if self._tags[guest] == "red" else "red"
                c.patch(f"/resources/{guest}", json={"tags": self._tags[guest]})


def check_stream(events: list[Event], hook: Receiver) -> None:
    """The delivered stream against the stored events: every event that is to be sent
    was delivered; distinct webhook ids are exactly those events; an id always came with
    the same body (no id delivered by two replicas as different events); and no change
    was reported under two ids (split brain would report a tag change twice)."""
    sendable = {e.id: e for e in events if e.suppressed is None}
    bodies: dict[str, bytes] = {}
    for request in hook.accepted():
        if not request.verified:
            # Only a request cut short by the kill -9 of its sender may fail to verify.
            sent = int(request.headers.get("content-length") or 0)
            assert len(request.body) < sent, "a webhook with a bad signature"
            continue
        assert bodies.setdefault(request.id, request.body) == request.body, (
            f"webhook id {request.id} was delivered with two different bodies"
        )
    assert set(bodies) == set(sendable), (
        f"missing: {sorted(set(sendable) - set(bodies))[:5]}, "
        f"unknown: {sorted(set(bodies) - set(sendable))[:5]}"
    )
    for event_id, body in bodies.items():
        assert json.loads(body)["data"] == sendable[event_id].to_dict()
    chains: dict[tuple[str, str], list[tuple[str, object, object]]] = {}
    for e in sorted(events, key=lambda e: e.time):
        if e.change is not None and e.resource is not None and e.change.field == "tags":
            key = (e.cluster, e.resource.id)
            chains.setdefault(key, []).append((e.id, e.change.old, e.change.new))
    for key, chain in chains.items():
        for (_, _, before), (event_id, old, _) in itertools.pairwise(chain):
            assert old == before, f"{key}: {event_id} repeats or skips a tag change"
