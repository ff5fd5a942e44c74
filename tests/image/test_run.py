"""The image run as the docs run it, configured by the environment only (the image's own
config), against `pvewatch simulate` from the same image: it polls and turns healthy as
uid 10001, a guest start reaches its log and its store, SIGHUP reloads, `docker stop` ends
it with exit 0 well within its grace, and its state survives a restart (a stop made while
it was down is reported late: a live stop would be held 30 s, docs/rules.md, "Holds").

The tests of this module run in order on one container (each says what it needs)."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest

from tests.image.engine import LABEL
from tests.image.support import TOKEN, Built, Container, Simulator, free_port, owned_file

STOP_GRACE_SECS = 30  # compose's stop_grace_period, the docs' --stop-timeout


@pytest.fixture(scope="module")
def watcher(built: Built, sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Container:
    secrets = tmp_path_factory.mktemp("secrets")
    secrets.chmod(0o755)
    token = owned_file(secrets / "pve_token", TOKEN + "\n")  # chown 10001, mode 0600
    volume = f"pvw-it-state-{id(secrets)}"
    built.engine.run("volume", "create", "--label", LABEL, volume)
    listen = f"127.0.0.1:{free_port()}"
    container = Container(
        built,
        "watch",
        options=[
            "-e", "PVE_CLUSTER=lab", "-e", f"PVE_ENDPOINT={sim.url}", "-e", "PVE_INTERVAL_SECS=1",
            "-e", f"PVEWATCH_LISTEN={listen}",
            "-v", f"{token}:/run/secrets/pve_token:ro", "-v", f"{volume}:/var/lib/pvewatch",
        ],
    )  # fmt: skip
    container.listen = listen
    return container


def _events(container: Container) -> list[dict[str, object]]:
    out = container.exec("pvewatch", "events", "--since", "1h", "--json")
    return [json.loads(line) for line in out.splitlines()]


def test_polls_and_turns_healthy(watcher: Container) -> None:
    health = watcher.wait_health("healthy")
    assert health["Log"][-1]["Output"].startswith("ok: http://127.0.0.1:")
    url = f"http://{watcher.listen}"
    ready = httpx.get(f"{url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    polls = re.search(
        r'^pvewatch_polls_total\{cluster="lab",result="success"\} (\S+)$', metrics, re.M
    )
    assert polls is not None, metrics[:2000]
    assert float(polls.group(1)) >= 1


def test_runs_as_10001_and_its_files_are_10001(watcher: Container) -> None:
    status = watcher.exec("cat", "/proc/1/status")
    ids = {line.split(":")[0]: line.split()[1:3] for line in status.splitlines()
           if line.startswith(("Uid:", "Gid:"))}  # fmt: skip
    assert ids == {"Uid": ["10001", "10001"], "Gid": ["10001", "10001"]}
    owners = watcher.exec("stat", "-c", "%u:%g", "/var/lib/pvewatch", "/var/lib/pvewatch/state.db")
    assert owners.split() == ["10001:10001", "10001:10001"]


def test_a_guest_start_reaches_the_log_and_the_store(watcher: Container, sim: Simulator) -> None:
    guest = sim.guest("stopped")
    sim.set_status(guest, "running")
    watcher.wait_log(f"guest.started {guest}")
    stored = [e for e in _events(watcher) if e["type"] == "guest.started"]
    assert [_resource(e) for e in stored] == [guest]


def test_sighup_reloads_and_it_stays_healthy(watcher: Container) -> None:
    before = len(watcher.logs())
    watcher.engine.run("kill", "--signal", "HUP", watcher.name)
    after = watcher.wait_log("reloading:", after=before)
    watcher.wait_log("watching 1 cluster(s)", after=after)
    assert watcher.inspect()["State"]["Running"]
    watcher.wait_health("healthy")


def test_docker_stop_exits_0_well_within_its_grace(watcher: Container) -> None:
    started = time.monotonic()
    watcher.engine.run("stop", "--time", str(STOP_GRACE_SECS), watcher.name, timeout=120)
    elapsed = time.monotonic() - started
    assert watcher.exit_code() == 0, watcher.logs()[-3000:]
    # A SIGKILL at the end of the grace would take all of it: half of it is "well within".
    assert elapsed < STOP_GRACE_SECS / 2, elapsed
    assert "stopped" in watcher.logs()[-2000:]


def test_a_guest_stop_while_it_was_down_is_reported_from_the_kept_state(
    watcher: Container, sim: Simulator
) -> None:
    """The volume keeps the snapshot: after `docker start` the stop made meanwhile is a
    late guest.stopped (sent at once: not held), not a new baseline, and the events from
    before the restart are still in the store."""
    guest = sim.guest("running")
    sim.set_status(guest, "stopped")
    watcher.engine.run("start", watcher.name)
    watcher.wait_health("healthy")
    watcher.wait_log(f"guest.stopped {guest}")
    events = [e for e in _events(watcher) if not e.get("suppressed")]
    stopped = [e for e in events if e["type"] == "guest.stopped"]
    assert [(_resource(e), e["detected_late"]) for e in stopped] == [(guest, True)]
    assert any(e["type"] == "guest.started" for e in events)
    assert watcher.logs().count("baseline of") == 1


def _resource(event: dict[str, object]) -> str:
    resource = event["resource"]
    assert isinstance(resource, dict)
    return str(resource["id"])
