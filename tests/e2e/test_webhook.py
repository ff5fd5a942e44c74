"""Webhooks end to end: the simulator on a real socket, pvewatch, and a receiver on a real
socket that checks every signature with its own Standard Webhooks code (receiver.py).

Changes are guest renames: sent at once (no hold), one event each.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pvewatch.config.load import load_config
from pvewatch.config.types import Config
from pvewatch.operate import deliveries
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
from tests.e2e.receiver import Receiver, receiver


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with simulator(guests=12) as s:
        yield s


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def write_config(sim: SimServer, tmp: Path, url: str, **hook: Any) -> Path:
    assert sim.fingerprint is not None
    doc = {
        "clusters": [
            {
                "name": "e2e",
                "endpoints": [sim.url],
                "token": TOKEN,
                "tls": {"fingerprint": sim.fingerprint},
                "interval_secs": 1,
                "timeout_secs": 2,
            }
        ],
        "store": {"path": str(tmp / "state.db")},
        "http": {"listen": "127.0.0.1:0"},
        "sinks": {
            "hook": {
                "type": "webhook",
                "url": url,
                "secret": "${HOOK_SECRET}",
                "timeout_secs": 1,
                "retry": {"initial_secs": 0.2, "max_secs": 1},
                **hook,
            },
            "events": {"type": "log", "format": "json", "path": str(tmp / "events.jsonl")},
        },
    }
    path = tmp / "watch.yaml"
    path.write_text(json.dumps(doc))  # JSON is YAML
    return path


def load(path: Path, r: Receiver) -> Config:
    return load_config(path, {"HOOK_SECRET": r.secret}, sink_types=SINK_TYPES)


def rename(sim: SimServer, n: int, name: str) -> None:
    """Rename the n-th VM of the simulated cluster."""
    with control(sim) as c:
        rows = c.get("/resources").json()
        vms = sorted(r["id"] for r in rows if r["type"] == "qemu")
        c.patch(f"/resources/{vms[n]}", json={"name": name}).raise_for_status()


def stored(config: Config) -> list[str]:
    """The ids of the events routed to the webhook, in commit order."""
    with SqliteStore(config.store.path) as store:
        rows = store.deliveries(sink="hook", state=None, limit=10_000)
        rows += store.deliveries(sink="hook", state="delivered", limit=10_000)
    return [r.event.id for r in sorted(rows, key=lambda r: r.outbox_id)]


def logged(tmp: Path, type_: str = "guest.renamed") -> list[dict[str, Any]]:
    return [e for e in read_events(tmp / "events.jsonl") if e["type"] == type_]


def polls_go_on(sim: SimServer, polls: int = 3) -> None:
    start = polls_served(sim)
    wait_for(lambda: polls_served(sim) >= start + polls, what=f"{polls} more polls")


def assert_signed_once_per_event(r: Receiver, event_ids: list[str]) -> None:
    """Every request verified; the ids accepted are exactly the events; a duplicate (a
    retry, or a resend after a crash) carries the same id and the same body."""
    requests = r.deliveries()
    assert requests, "the receiver got nothing"
    assert all(d.verified for d in requests), [d.headers for d in requests if not d.verified]
    accepted = {d.id for d in r.accepted()}
    assert accepted == set(event_ids)
    assert len(accepted) == len(event_ids)
    bodies: dict[str, bytes] = {}
    for d in requests:
        assert bodies.setdefault(d.id, d.body) == d.body, f"{d.id} sent with two bodies"
        assert d.json()["data"]["id"] == d.id


# --- at least once, through failures and kill -9 --------------------------------------------


def _start(config: Path, r: Receiver) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HOOK_SECRET": r.secret}
    cmd = [sys.executable, "-m", "pvewatch", "run", "-c", str(config), "--log-level", "error"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert process.stderr is not None
    process.stderr.close()


def test_every_event_arrives_through_500s_timeouts_refusals_and_kill_9(
    sim: SimServer, hook: Receiver, tmp_path: Path
) -> None:
    path = write_config(sim, tmp_path, hook.url, concurrency=2)
    config = load(path, hook)
    hook.set(status=500)
    process = _start(path, hook)
    try:
        wait_for(lambda: baseline_recorded(config), what="the baseline")
        rename(sim, 0, "a-500")
        wait_for(lambda: len(hook.deliveries()) >= 3, what="retries of the 500s")
        hook.set(hang=True)  # the sink's 1 s timeout ends each attempt
        rename(sim, 1, "a-timeout")
        wait_for(lambda: len(stored(config)) == 2, what="the second event")
        count = len(hook.deliveries())
        wait_for(lambda: len(hook.deliveries()) >= count + 2, what="attempts that time out")
        _kill(process)
        hook.stop()  # refused from now on
        process = _start(path, hook)
        rename(sim, 2, "a-refused")
        wait_for(lambda: len(stored(config)) == 3, what="the third event")
        polls_go_on(sim, 2)
        _kill(process)
        hook.start()  # the same port, answering 200
        hook.set(status=200)
        process = _start(path, hook)
        rename(sim, 3, "a-ok")
        wait_for(lambda: len(stored(config)) == 4, what="the fourth event")
        wait_for(
            lambda: {d.id for d in hook.accepted()} >= set(stored(config)),
            timeout=30,
            what="every event at the receiver",
        )
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    assert_signed_once_per_event(hook, stored(config))
    with SqliteStore(config.store.path) as store:
        assert store.pending_count("hook") == 0


# --- receivers that take their time ---------------------------------------------------------


@pytest.mark.parametrize("mode", [{"hang": True}, {"endless": True}], ids=["silent", "endless"])
def test_a_receiver_that_never_answers_holds_up_no_poll_and_no_sink(
    sim: SimServer, hook: Receiver, tmp_path: Path, mode: dict[str, bool]
) -> None:
    config = load(write_config(sim, tmp_path, hook.url), hook)
    hook.set(**mode)
    with running_watcher(config):
        wait_for(lambda: baseline_recorded(config), what="the baseline")
        rename(sim, 0, "hung")
        wait_for(lambda: bool(hook.deliveries()), what="the first attempt")
        wait_for(lambda: logged(tmp_path), what="the log sink, meanwhile")
        polls_go_on(sim, 3)
        assert len(hook.deliveries()) >= 2  # timed out after 1 s each, and tried again
        hook.set(status=200)
        wait_for(lambda: bool(hook.accepted()), what="the delivery once answered")
    assert_signed_once_per_event(hook, stored(config))


def test_a_slow_receiver_gets_messages_in_parallel(
    sim: SimServer, hook: Receiver, tmp_path: Path
) -> None:
    delay = 4.0  # long beside a poll interval (1 s): the events may come from two polls
    config = load(write_config(sim, tmp_path, hook.url, timeout_secs=8, concurrency=4), hook)
    hook.set(delay_secs=delay)
    with running_watcher(config):
        wait_for(lambda: baseline_recorded(config), what="the baseline")
        for n in range(4):
            rename(sim, n, f"slow-{n}")
        wait_for(lambda: len(stored(config)) == 4, what="four events")
        polls_go_on(sim, 2)
        wait_for(lambda: len(hook.accepted()) == 4, what="four deliveries")
    starts = sorted(d.at for d in hook.deliveries())
    # One after another, the last would start 3 delays after the first; in parallel each
    # starts before the first is answered.
    assert starts[-1] - starts[0] < delay, starts
    assert_signed_once_per_event(hook, stored(config))


# --- what the answer says -------------------------------------------------------------------


def test_429_retry_after_holds_the_sink_then_the_same_message_goes_again(
    sim: SimServer, hook: Receiver, tmp_path: Path
) -> None:
    config = load(write_config(sim, tmp_path, hook.url), hook)
    hook.set(status=429, headers={"Retry-After": "3"})
    with running_watcher(config):
        wait_for(lambda: baseline_recorded(config), what="the baseline")
        rename(sim, 0, "throttled")
        wait_for(lambda: bool(hook.deliveries()), what="the first attempt")
        hook.set(status=200)
        rename(sim, 1, "during-the-hold")  # another resource: held as well
        wait_for(lambda: len(hook.accepted()) == 2, timeout=20, what="both, after the hold")
    first, *later = hook.deliveries()
    assert first.answered == 429
    assert all(d.at - first.at >= 2.9 for d in later), [d.at - first.at for d in later]
    assert [d.id for d in later].count(first.id) == 1  # the same message, the same id
    assert_signed_once_per_event(hook, stored(config))


def test_a_redirect_is_not_followed_and_the_delivery_is_dead_until_replayed(
    sim: SimServer, hook: Receiver, tmp_path: Path
) -> None:
    path = write_config(sim, tmp_path, hook.url)
    config = load(path, hook)
    with receiver() as elsewhere:
        hook.set(status=302, headers={"Location": elsewhere.url})
        with running_watcher(config):
            wait_for(lambda: baseline_recorded(config), what="the baseline")
            rename(sim, 0, "redirected")
            wait_for(lambda: dead(config), what="a dead delivery")
            out, err = io.StringIO(), io.StringIO()
            assert (
                deliveries.list_deliveries(
                    config, sink="hook", state="dead", as_json=True, limit=10, out=out, err=err
                )
                == 0
            )
            [row] = [json.loads(line) for line in out.getvalue().splitlines()]
            assert "HTTP 302" in row["last_error"]
            assert "redirect" in row["last_error"]
            assert "T0KEN" not in row["last_error"]
            hook.set(status=200)
            assert deliveries.replay(config, sink="hook", event_id=None, out=out, err=err) == 0
            wait_for(lambda: bool(hook.accepted()), what="the replayed delivery")
        assert elsewhere.deliveries() == []
    assert len(hook.deliveries()) == 2
    assert_signed_once_per_event(hook, stored(config))


def dead(config: Config) -> bool:
    with SqliteStore(config.store.path) as store:
        return store.dead_count("hook") > 0


def test_410_disables_the_sink_tells_the_others_and_keeps_its_events_for_the_restart(
    sim: SimServer, hook: Receiver, tmp_path: Path
) -> None:
    config = load(write_config(sim, tmp_path, hook.url), hook)
    hook.set(status=410)
    with running_watcher(config):
        wait_for(lambda: baseline_recorded(config), what="the baseline")
        rename(sim, 0, "gone-1")
        wait_for(lambda: logged(tmp_path, "sink.disabled"), what="sink.disabled in the log")
        rename(sim, 0, "gone-2")  # the same VM: it must arrive second
        wait_for(lambda: len(logged(tmp_path)) == 2, what="both renames in the log")
        polls_go_on(sim, 2)
        assert len(hook.deliveries()) == 1  # nothing more went to the disabled sink
    [notice] = logged(tmp_path, "sink.disabled")
    assert notice["details"]["sink"] == "hook"
    assert "410" in notice["summary"]
    with SqliteStore(config.store.path) as store:
        assert store.pending_count("hook") == 2
    hook.set(status=200)
    with running_watcher(config):  # a restart enables it again: the events go, in order
        wait_for(lambda: len(hook.accepted()) == 2, what="the queued events")
    assert [d.json()["data"]["resource"]["name"] for d in hook.accepted()] == ["gone-1", "gone-2"]
    assert_signed_once_per_event(hook, stored(config))
