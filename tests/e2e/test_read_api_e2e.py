"""The read API end to end: the real daemon on a simulator, asked over its real listener.
A stop appears with its cause and its delivery state; a webhook that is refused shows as
dead with its error; paging does not repeat or skip while the daemon commits events."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pvewatch.lifecycle.reload import ConfigSource
from pvewatch.simulator.server import SimServer
from tests.e2e.harness import TOKEN, baseline_recorded, running_watcher, simulator, wait_for
from tests.e2e.page_rig import (
    HOOK_SECRET,
    URL_TOKEN,
    api,
    daemon,
    daemon_config,
    sim_call,
    stop_by,
)


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with simulator(guests=12) as s:
        sim_call(s, "PATCH", "/resources/qemu/100", {"status": "running"})
        yield s


def stopped(url: str) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    found = api(url, "/api/v1/events", type="guest.stopped", resource="qemu/100")
    return [(e, found["deliveries"][e["id"]]) for e in found["events"]]


def test_a_stop_appears_with_its_cause_and_the_dead_webhook(sim: SimServer, tmp_path: Path) -> None:
    with daemon(daemon_config(sim, tmp_path)) as url:
        status = api(url, "/api/v1/status")
        [cluster] = status["clusters"]
        assert (cluster["name"], cluster["health"]) == ("e2e", "ok")
        assert cluster["resources"]["node"] == {"online": 3}
        assert sum(cluster["resources"]["qemu"].values()) > 0
        upid = stop_by(sim, 100, "alice@pve")
        [(event, _)] = wait_for(lambda: stopped(url), what="the stop in /api/v1/events")
        assert event["cause"] == {"kind": "user", "task": upid, "user": "alice@pve"}
        assert event["cluster"] == "e2e"

        def dead() -> list[dict[str, Any]]:
            [(_, states)] = stopped(url)
            return [s for s in states if s["sink"] == "hook" and s["state"] == "dead"]

        [hook] = wait_for(dead, what="the webhook row to be dead")
        assert hook["last_error"]
        queues = {q["sink"]: q for q in api(url, "/api/v1/deliveries")["sinks"]}
        assert queues["hook"]["dead"] >= 1
        assert queues["hook"]["last_error"] == hook["last_error"]
        assert queues["events"]["dead"] == 0
        shown = str(queues) + str(stopped(url)) + str(api(url, "/api/v1/status"))
        for secret in (URL_TOKEN, HOOK_SECRET, TOKEN.split("=")[1]):
            assert secret not in shown


def test_paging_is_stable_while_events_are_committed(sim: SimServer, tmp_path: Path) -> None:
    guests = [r["id"] for r in sim_call(sim, "GET", "/resources") if r["type"] == "qemu"]
    with daemon(daemon_config(sim, tmp_path)) as url:
        for n, guest in enumerate(guests[:6]):
            sim_call(sim, "PATCH", f"/resources/{guest}", {"name": f"before{n}"})
        wait_for(
            lambda: len(api(url, "/api/v1/events", type="guest.renamed")["events"]) == 6,
            what="six renames",
        )
        stop = threading.Event()

        def rename_on() -> None:  # new events keep arriving while a script pages
            n = 0
            while not stop.is_set():
                n += 1
                sim_call(sim, "PATCH", f"/resources/{guests[n % len(guests)]}", {"name": f"x{n}"})
                stop.wait(0.1)

        renamer = threading.Thread(target=rename_on)
        renamer.start()
        try:
            seen: list[str] = []
            page = api(url, "/api/v1/events", limit="2")
            newest = page["events"][0]["id"]
            wait_for(  # at least one event is committed between two pages, however slow
                lambda: api(url, "/api/v1/events", limit="1")["events"][0]["id"] != newest,
                what="an event committed after the first page",
            )
            while True:
                seen += [e["id"] for e in page["events"]]
                if page["next"] is None:
                    break
                stop.wait(0.3)  # a poll commits meanwhile
                page = api(url, "/api/v1/events", limit="2", cursor=page["next"])
        finally:
            stop.set()
            renamer.join()
        after = [e["id"] for e in api(url, "/api/v1/events", limit="1000")["events"]]
    assert len(seen) == len(set(seen)), "a page repeated an event"
    assert len(after) > len(seen), "no event was committed while paging"
    # Everything stored when paging began, once, newest first; what came later: not at all.
    assert seen == after[after.index(newest) :]


def test_the_api_reads_the_new_runtimes_store_after_a_reload(
    sim: SimServer, tmp_path: Path
) -> None:
    config = daemon_config(sim, tmp_path)
    urls: list[str] = []
    with running_watcher(
        config, on_listening=urls.append, source=ConfigSource(lambda: config)
    ) as w:
        wait_for(lambda: baseline_recorded(config), what="the baseline")
        url = urls[-1]
        assert api(url, "/api/v1/status")["clusters"][0]["health"] == "ok"
        readies = w.readies
        w.reload()
        wait_for(lambda: w.readies > readies, what="the reload")
        stop_by(sim, 100, "carol@pve")
        wait_for(lambda: stopped(url), what="the stop, read from the reloaded runtime's store")
        assert len(urls) == 1  # the same listener
