"""`type: mqtt` end to end: `pvewatch run` against the simulator, publishing over TLS with
a password to a real Mosquitto (tests/sinks/mosquitto.py), with a subscriber watching.

- `kill -9` at random moments: the subscriber gets every stored event, and every copy of
  one (at-least-once) is the same event under the same id: distinct ids = events.
- After the last restart, a subscriber that connects late finds, retained, the state of
  every guest as the simulator has it, and a Home Assistant entry per node and guest.
- A broker that is down: the events wait in the outbox and arrive once it is back.
- A login the broker refuses keeps the events queued and says why; with the password
  fixed and a reload (SIGHUP), they all arrive.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pvewatch.model import Event
from pvewatch.simulator.server import SimServer
from pvewatch.sinks import mqtt_messages as msg
from pvewatch.store.sqlite import SqliteStore
from tests.e2e.harness import TOKEN, control, polls_served, simulator, wait_for
from tests.sinks.mosquitto import PASSWORD, USER, Broker, Received, mosquitto, subscribed

ITERATIONS = 5
CLUSTER = "crash"


def write_config(tmp: Path, sim_url: str, fingerprint: str, broker: Broker) -> Path:
    (tmp / "token").write_text(TOKEN + "\n")
    (tmp / "mqtt.pass").write_text(PASSWORD + "\n")
    config = {
        "clusters": [
            {
                "name": CLUSTER,
                "endpoints": [sim_url],
                "token_file": str(tmp / "token"),
                "tls": {"fingerprint": fingerprint},
                "interval_secs": 1,
                "timeout_secs": 2,
            }
        ],
        "store": {"path": str(tmp / "state.db")},
        "http": {"listen": "127.0.0.1:0"},
        "rules": {"shape": {"hold": False, "flapping": False}},
        "sinks": {
            "broker": {
                "type": "mqtt",
                "url": broker.tls_url,
                "username": USER,
                "password_file": str(tmp / "mqtt.pass"),
                "tls": {"ca_file": str(broker.ca_file)},
                "homeassistant": True,
                "retry": {"initial_secs": 0.2, "max_secs": 1},
            }
        },
    }
    path = tmp / "watch.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


@contextlib.contextmanager
def setup(tmp: Path, guests: int) -> Iterator[tuple[Broker, SimServer, Path, list[dict[str, Any]]]]:
    """A broker, a simulator, the config of a pvewatch between them, the simulator's
    resources."""
    with mosquitto(tmp) as broker, simulator(guests=guests) as sim:
        assert sim.fingerprint
        config = write_config(tmp, sim.url, sim.fingerprint, broker)
        with control(sim) as c:
            rows = c.get("/resources").json()
        yield broker, sim, config, rows


def start(config: Path, tmp: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pvewatch", "run", "-c", str(config), "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "stderr.log").open("ab"),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def stored_events(tmp: Path) -> list[Event]:
    with SqliteStore(tmp / "state.db") as store:
        return store.events(limit=100_000)


def baseline_recorded(tmp: Path) -> bool:
    if not (tmp / "state.db").exists():
        return False
    with SqliteStore(tmp / "state.db") as store:
        return store.load(CLUSTER)[0] is not None


def published_events(got: list[Received]) -> list[dict[str, Any]]:
    return [
        json.loads(r.payload)
        for r in got
        if r.topic.startswith(f"pvewatch/{CLUSTER}/") and "/state/" not in r.topic
    ]


def stop(proc: subprocess.Popen[bytes], tmp: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0, (tmp / "stderr.log").read_text()


def test_kill_9_each_event_once_per_id_and_the_state_right_after_restart(
    tmp_path: Path,
) -> None:
    rng = random.Random(21)
    with setup(tmp_path, 12) as (broker, sim, config, rows):
        status = {r["id"]: r["status"] for r in rows if r["type"] in ("qemu", "lxc")}
        nodes = [r["id"] for r in rows if r["type"] == "node"]
        guests = sorted(status)

        def flip(guest: str) -> None:
            status[guest] = "stopped" if status[guest] == "running" else "running"
            with control(sim) as c:
                c.patch(f"/resources/{guest}", json={"status": status[guest]})

        with subscribed(broker, "pvewatch/#") as sub:
            proc = start(config, tmp_path)
            wait_for(lambda: baseline_recorded(tmp_path), what="the baseline")
            for i in range(ITERATIONS):
                if i:
                    proc = start(config, tmp_path)
                deadline = time.monotonic() + rng.uniform(0.3, 2.5)
                while time.monotonic() < deadline:
                    flip(rng.choice(guests))
                    time.sleep(rng.uniform(0.05, 0.4))  # fault injection timing, not a wait
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)

            served = polls_served(sim)
            proc = start(config, tmp_path)
            try:
                wait_for(lambda: polls_served(sim) > served, what="the restarted watcher")
                flip(guests[0])  # one change the last process must see and send

                def all_received() -> bool:
                    stored = {e.id for e in stored_events(tmp_path)}
                    got = {e["id"] for e in published_events(sub.received())}
                    last = any(
                        e.resource
                        and e.resource.id == guests[0]
                        and e.change
                        and e.change.new == status[guests[0]]
                        for e in stored_events(tmp_path)
                        if e.id in got
                    )
                    return last and stored <= got

                wait_for(all_received, timeout=60, what="every stored event at the subscriber")

                # A subscriber that connects now sees each guest's state at once, retained.
                def states_right() -> dict[str, Any] | None:
                    with subscribed(broker, f"pvewatch/{CLUSTER}/state/#") as late:
                        found = _retained(late, len(rows))
                    ok = all(
                        found.get(f"pvewatch/{CLUSTER}/state/{g}", {}).get("status") == status[g]
                        for g in guests
                    )
                    return found if ok else None

                states = wait_for(states_right, timeout=30, what="the retained states")
                with subscribed(broker, "homeassistant/#") as ha:
                    configs = _retained(ha, len(nodes) + len(guests))
            finally:
                stop(proc, tmp_path)
            received = published_events(sub.received())

    stored = {e.id: e for e in stored_events(tmp_path)}
    copies = Counter(e["id"] for e in received)
    assert set(copies) == set(stored), "an event was lost or invented"
    for event in received:  # a duplicate is the same event, byte for byte
        assert event == stored[event["id"]].to_dict()
    assert len(stored) > ITERATIONS, "suspiciously few events"
    print(
        f"mqtt kill -9: {len(stored)} events, {len(received)} messages, "
        f"{len(received) - len(stored)} duplicates"
    )
    for g in guests:
        assert states[f"pvewatch/{CLUSTER}/state/{g}"]["running"] == (status[g] == "running")
    for n in nodes:
        assert states[f"pvewatch/{CLUSTER}/state/{n}"]["type"] == "node"
    expected = {msg.discovery_topic("homeassistant", CLUSTER, r) for r in [*nodes, *guests]}
    assert set(configs) == expected
    assert {c["unique_id"] for c in configs.values()} == {
        msg.unique_id(CLUSTER, r) + "_running" for r in [*nodes, *guests]
    }


def _retained(sub: Any, count: int) -> dict[str, Any]:
    """The retained messages a fresh subscription gets, once `count` have come (or the
    deadline passed: the caller checks what is there)."""
    with contextlib.suppress(AssertionError):
        wait_for(lambda: len(sub.received()) >= count, timeout=5, what=f"{count} retained")
    return {r.topic: json.loads(r.payload) for r in sub.received() if r.retain and r.payload}


def test_a_first_start_publishes_every_state_without_any_event(tmp_path: Path) -> None:
    with setup(tmp_path, 6) as (broker, _sim, config, rows):
        watched = {r["id"]: r for r in rows if r["type"] in ("node", "qemu", "lxc")}
        proc = start(config, tmp_path)
        try:
            wait_for(lambda: baseline_recorded(tmp_path), what="the baseline")
            wanted = [f"pvewatch/{CLUSTER}/state/{rid}" for rid in watched] + [
                msg.discovery_topic("homeassistant", CLUSTER, rid) for rid in watched
            ]
            with subscribed(broker, "#") as sub:
                wait_for(
                    lambda: {r.topic for r in sub.received()} >= set(wanted),
                    timeout=20,
                    what="every node's and guest's state and discovery entry",
                )
            # Retained: a subscriber that comes later gets them all at once.
            with subscribed(broker, "#") as late:

                def retained() -> dict[str, Any]:
                    got = {r.topic: json.loads(r.payload) for r in late.received() if r.retain}
                    return got if all(t in got for t in wanted) else {}

                got = wait_for(retained, what="the retained states")
        finally:
            stop(proc, tmp_path)
    assert stored_events(tmp_path) == []  # the first poll is a baseline: no event
    for rid, row in watched.items():
        state = got[f"pvewatch/{CLUSTER}/state/{rid}"]
        assert state["status"] == row["status"]
        assert state["running"] == (row["status"] in ("running", "online"))
        config = got[msg.discovery_topic("homeassistant", CLUSTER, rid)]
        assert config["state_topic"] == f"pvewatch/{CLUSTER}/state/{rid}"


def pending_with(tmp: Path, reason: str) -> bool:
    """A delivery to the broker waits for a retry after failing for `reason`."""
    with SqliteStore(tmp / "state.db") as store:
        rows = store.deliveries(sink="broker", state="pending", limit=10)
    return any(reason in (r.last_error or "") for r in rows)


def test_a_broker_down_then_up_loses_nothing(tmp_path: Path) -> None:
    with setup(tmp_path, 4) as (broker, sim, config, rows):
        guests = [r["id"] for r in rows if r["type"] == "qemu" and r["status"] == "running"]
        # A persistent session: the broker keeps the subscription over its restart.
        with subscribed(broker, "pvewatch/#", persistent=True) as sub:
            proc = start(config, tmp_path)
            try:
                wait_for(lambda: baseline_recorded(tmp_path), what="the baseline")
                broker.stop()
                with control(sim) as c:
                    for guest in guests[:2]:
                        c.patch(f"/resources/{guest}", json={"status": "stopped"})
                wait_for(
                    lambda: pending_with(tmp_path, "cannot connect"),
                    timeout=30,
                    what="a failed attempt",
                )
                broker.start()
                wait_for(
                    lambda: len(published_events(sub.received())) >= 2,
                    timeout=30,
                    what="both events after the broker came back",
                )
            finally:
                stop(proc, tmp_path)
    got = {(e["type"], e["resource"]["id"]) for e in published_events(sub.received())}
    assert got == {("guest.stopped", g) for g in guests[:2]}


def test_a_refused_login_keeps_the_events_until_the_password_is_fixed(tmp_path: Path) -> None:
    with setup(tmp_path, 4) as (broker, sim, config, rows):
        (tmp_path / "mqtt.pass").write_text("not-the-password\n")
        guest = next(r["id"] for r in rows if r["type"] == "qemu" and r["status"] == "running")
        with subscribed(broker, "pvewatch/#") as sub:
            proc = start(config, tmp_path)
            try:
                wait_for(lambda: baseline_recorded(tmp_path), what="the baseline")
                with control(sim) as c:
                    c.patch(f"/resources/{guest}", json={"status": "stopped"})
                wait_for(
                    lambda: pending_with(tmp_path, "refused the login"),
                    timeout=30,
                    what="the refusal in deliveries",
                )
                assert published_events(sub.received()) == []
                (tmp_path / "mqtt.pass").write_text(PASSWORD + "\n")
                proc.send_signal(signal.SIGHUP)
                wait_for(
                    lambda: [e["type"] for e in published_events(sub.received())],
                    timeout=30,
                    what="the queued event",
                )
            finally:
                stop(proc, tmp_path)
        (event,) = published_events(sub.received())
        assert (event["type"], event["resource"]["id"]) == ("guest.stopped", guest)
        assert PASSWORD not in (tmp_path / "stderr.log").read_text()
        assert "not-the-password" not in (tmp_path / "stderr.log").read_text()
