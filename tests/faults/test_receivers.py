"""Receivers misbehave one way after another — refusing connections, 503 and 429 storms
with Retry-After, answers that never end, slow answers — while the cluster keeps
changing. Every event reaches the misbehaving receiver once it recovers (distinct
webhook ids, the same signed bytes on every attempt); meanwhile a second webhook and the
log sink get each event at once, and polling never pauses. Each misbehaviour alone, and
redirects and 410: tests/e2e/test_webhook.py; the decisions: tests/deliver/."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

from pvewatch.config.load import load_config
from pvewatch.simulator.server import SimServer
from pvewatch.sinks.table import SINK_TYPES
from pvewatch.store.sqlite import SqliteStore
from tests.e2e.harness import (
    TOKEN,
    control,
    polls_served,
    read_events,
    running_watcher,
    simulator,
    wait_for,
)
from tests.faults.figures import Figures
from tests.faults.receiver import Receiver, Request
from tests.faults.support import cluster_entry, write_config

KEY = b"faults-receiver-key-0123456789ab"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
PHASES = ["down", "status:503", "status:429", "endless", "slow"]


def _config(tmp: Path, sim: SimServer, flaky: Receiver, steady: Receiver) -> Path:
    def hook(url: str) -> dict[str, object]:
        retry = {"initial_secs": 0.2, "max_secs": 1}
        return {"type": "webhook", "url": url, "secret": SECRET, "timeout_secs": 1, "retry": retry}

    cluster = cluster_entry("hooks", sim, token=TOKEN)
    return write_config(tmp, [cluster], {"flaky": hook(flaky.url), "steady": hook(steady.url)})


def _signed(request: Request) -> bool:
    h = request.headers
    signed = f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + request.body
    expected = base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
    return f"v1,{expected}" in h["webhook-signature"].split(" ")


def _start_guest(sim: SimServer, stopped: list[str]) -> None:
    with control(sim) as c:
        c.patch(f"/resources/{stopped.pop()}", json={"status": "running"}).raise_for_status()


def _misbehave(
    phase: str, sim: SimServer, flaky: Receiver, steady: Receiver, stopped: list[str], log: Path
) -> None:
    """Two changes while `flaky` misbehaves as `phase` says; the log, the steady webhook
    and polling must not wait for it. Then `flaky` is healthy again."""
    if phase == "down":
        flaky.down()
    else:
        flaky.mode = phase
    served, logged = polls_served(sim), len(read_events(log))
    for _ in range(2):
        _start_guest(sim, stopped)
    wait_for(lambda: len(read_events(log)) >= logged + 2, what=f"the log ({phase})")
    wait_for(lambda: len(steady.delivered_ids()) >= logged + 2, what=f"the webhook ({phase})")
    wait_for(lambda: polls_served(sim) > served, what=f"a poll ({phase})")
    if phase == "down":
        flaky.up()
    flaky.mode = "ok"


def test_every_event_arrives_after_a_storm_of_misbehaviour_and_nothing_else_waits(
    tmp_path: Path, figures: Figures
) -> None:
    rounds = figures.scaled(1, 4)
    flaky, steady = Receiver().up(), Receiver().up()
    try:
        with simulator(guests=10 + 2 * len(PHASES) * rounds) as sim:
            config = load_config(_config(tmp_path, sim, flaky, steady), {}, sink_types=SINK_TYPES)
            with control(sim) as c:  # every guest stopped: each phase starts two
                rows = c.get("/resources").json()
                stopped = [r["id"] for r in rows if r["type"] in ("qemu", "lxc")]
                for guest in stopped:
                    c.patch(f"/resources/{guest}", json={"status": "stopped"}).raise_for_status()
            log = tmp_path / "events.jsonl"
            with running_watcher(config):
                wait_for(lambda: polls_served(sim) >= 1, what="a first poll")
                for phase in PHASES * rounds:
                    _misbehave(phase, sim, flaky, steady, stopped, log)
                expected = {e["id"] for e in read_events(log)}
                wait_for(
                    lambda: flaky.delivered_ids() >= expected,
                    timeout=30,
                    what="every event at the recovered receiver",
                )
    finally:
        flaky.down()
        steady.down()
    with SqliteStore(tmp_path / "state.db") as store:
        stored = {e.id for e in store.events(limit=100_000) if e.suppressed is None}
    assert flaky.delivered_ids() == stored == steady.delivered_ids() == expected
    first: dict[str, bytes] = {}
    for request in flaky.requests + steady.requests:  # every attempt, signed, the same body
        assert _signed(request)
        body = first.setdefault(request.headers["webhook-id"], request.body)
        assert request.body == body
    failed = [r for r in flaky.requests if not 200 <= r.status < 300]
    assert failed, "the receiver never misbehaved"
    figures.add("faults_injected", len(failed) + rounds)  # + the times it was down
    figures.add("events_checked", len(stored))
    figures.measure(
        "webhook_attempts_per_event_at_the_flaky_receiver", len(flaky.requests) / len(stored)
    )
