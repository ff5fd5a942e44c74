"""/metrics, /healthz and /readyz of `pvewatch run` against simulators on real sockets:
what Prometheus (and promtool) get, readiness through an outage, and a 10,000-guest
cluster scraped while it is being polled."""

from __future__ import annotations

import dataclasses
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from pvewatch.config.types import Config, SinkConfig
from pvewatch.simulator.server import SimServer
from pvewatch.sinks.prometheus import PrometheusOptions
from pvewatch.store.sqlite import SqliteStore
from tests.e2e.harness import (
    control,
    read_events,
    running_watcher,
    simulator,
    wait_for,
    watcher_config,
)
from tests.need import tool
from tests.prom import answered, parse, promtool, promtool_check_metrics, select, value

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def watching(config: Config) -> Iterator[httpx.Client]:
    """`pvewatch run` with `config`, and a client for its listener."""
    urls: list[str] = []
    with running_watcher(config, on_listening=urls.append):
        (url,) = urls
        with httpx.Client(base_url=url, timeout=10) as client:
            yield client


def ready(client: httpx.Client) -> bool:
    return client.get("/readyz").status_code == 200


def scrape(client: httpx.Client) -> str:
    answer = client.get("/metrics")
    assert answer.status_code == 200
    return answer.text


def two_clusters(first: SimServer, second: SimServer, tmp: Path) -> Config:
    one, two = watcher_config(first, tmp), watcher_config(second, tmp)
    metrics_sink = SinkConfig("metrics", "prometheus", PrometheusOptions(state_metrics=True))
    return dataclasses.replace(
        one,
        clusters=(
            dataclasses.replace(one.clusters[0], name="alpha"),
            dataclasses.replace(two.clusters[0], name="beta"),
        ),
        sinks=(*one.sinks, metrics_sink),
    )


def _set(sim: SimServer, rid: str, **fields: Any) -> None:
    with control(sim) as c:
        c.patch(f"/resources/{rid}", json=fields).raise_for_status()


def test_promtool_accepts_a_scrape_of_two_clusters_with_sinks_and_events(tmp_path: Path) -> None:
    promtool()  # before starting anything
    with simulator() as first, simulator(seed=8) as second:
        config = two_clusters(first, second, tmp_path)
        for sim in (first, second):
            _set(sim, "qemu/100", status="running")
        with watching(config) as client:
            wait_for(lambda: ready(client), what="both clusters polled")
            for sim in (first, second):
                _set(sim, "qemu/100", status="stopped")
            _set(first, "qemu/101", tags="b;a;with space")
            wait_for(
                lambda: len(read_events(tmp_path / "events.jsonl")) >= 3,
                what="the events of both clusters",
            )
            wait_for(
                lambda: value(parse(scrape(client)), "pvewatch_outbox_pending", sink="events") == 0,
                what="the events delivered",
            )
            text = scrape(client)
    assert promtool_check_metrics(text) == ""
    samples = parse(text)
    for cluster in ("alpha", "beta"):
        stopped = value(samples, "pvewatch_events_total", cluster=cluster, type="guest.stopped")
        assert stopped == 1.0
        assert value(samples, "pvewatch_resource_up", cluster=cluster, id="qemu/100") == 0.0
        assert value(samples, "pvewatch_source_up", cluster=cluster) == 1.0
    assert value(samples, "pvewatch_deliveries_total", sink="events", outcome="delivered") >= 3
    assert value(samples, "pvewatch_sink_enabled", sink="events") == 1.0
    # The prometheus sink is no delivery sink: no Deliverer, no outbox rows.
    assert [s for s in samples if s.labels.get("sink") == "metrics"] == []
    with SqliteStore(config.store.path) as store:
        assert (store.pending_count("metrics"), store.dead_count("metrics")) == (0, 0)


def test_readyz_before_the_first_poll_and_while_the_api_is_down(tmp_path: Path) -> None:
    with simulator() as sim:
        config = watcher_config(sim, tmp_path, interval=0.5)
        down = {"kind": "status", "code": 500, "count": 100_000}
        with control(sim) as c:
            c.post("/faults", json=down).raise_for_status()
        with watching(config) as client:
            not_yet = client.get("/readyz")
            assert not_yet.status_code == 503
            assert not_yet.json()["checks"][0]["detail"] == "no successful poll yet"
            assert client.get("/healthz").status_code == 200
            wait_for(
                lambda: (
                    'pvewatch_polls_total{cluster="e2e",result="unreachable"}' in scrape(client)
                ),
                what="a failed poll",
            )
            assert client.get("/readyz").status_code == 503
            with control(sim) as c:
                c.delete("/faults").raise_for_status()
            wait_for(lambda: ready(client), what="ready after the API came back")
            with control(sim) as c:
                c.post("/faults", json=down).raise_for_status()
            stale = wait_for(
                lambda: answered(client, "/readyz", 503),
                what="not ready while the API is down",
            )
            assert "last successful poll" in stale.json()["checks"][0]["detail"]
            assert value(parse(scrape(client)), "pvewatch_source_up", cluster="e2e") == 0.0
            with control(sim) as c:
                c.delete("/faults").raise_for_status()
            wait_for(lambda: ready(client), what="ready again")


def _timed_scrape(client: httpx.Client) -> tuple[float, str]:
    started = time.perf_counter()
    text = scrape(client)
    return time.perf_counter() - started, text


def _poll_stats(text: str) -> tuple[float, float]:
    """(polls, seconds spent polling) so far."""
    samples = parse(text)
    return (
        value(samples, "pvewatch_poll_duration_seconds_count", cluster="e2e"),
        value(samples, "pvewatch_poll_duration_seconds_sum", cluster="e2e"),
    )


def test_a_10000_guest_cluster(tmp_path: Path) -> None:
    with simulator(guests=10_000, nodes=10) as sim:
        with control(sim) as c:
            rows = c.get("/resources").json()
        config = watcher_config(sim, tmp_path, interval=1.0)
        with watching(config) as client:
            wait_for(lambda: ready(client), timeout=60, what="the first poll of 10,000 guests")
            times, text = zip(*(_timed_scrape(client) for _ in range(5)), strict=True)
            samples = parse(text[-1])
            state = [s for s in samples if s.name.startswith("pvewatch_resource_")]
            info = select(samples, "pvewatch_resource_info")
            assert len(info) == len(rows)
            # The first scrape encodes the state series; the next ones reuse that text.
            print(
                f"\n10,000 guests: {len(rows)} resources, {len(samples)} series in all, "
                f"{len(state)} of them per resource, {len(text[-1]) / 1e6:.1f} MB of text; "
                f"scrape {times[0] * 1000:.0f} ms first, then "
                f"{statistics.median(times[1:]) * 1000:.0f} ms (median of 4)"
            )
            guests = [r["id"] for r in rows if r["type"] in ("qemu", "lxc")]
            _removed_guests_lose_their_series(sim, client, guests[:50])
            _scraping_does_not_hold_up_polling(client)


def _removed_guests_lose_their_series(
    sim: SimServer, client: httpx.Client, gone: list[str]
) -> None:
    with control(sim) as c:
        for rid in gone:
            c.delete(f"/resources/{rid}").raise_for_status()

    def no_series_left() -> bool:
        text = scrape(client)
        return not any(f'id="{rid}"' in text for rid in gone)

    wait_for(no_series_left, timeout=30, what="the removed guests' series to disappear")


def _scraping_does_not_hold_up_polling(client: httpx.Client) -> None:
    quiet_start = _poll_stats(scrape(client))
    wait_for(
        lambda: _poll_stats(scrape(client))[0] >= quiet_start[0] + 2, what="2 polls, unscraped"
    )
    quiet_end = _poll_stats(scrape(client))
    stop = threading.Event()
    scrapes = [0]

    def hammer() -> None:
        with httpx.Client(base_url=client.base_url, timeout=30) as own:
            while not stop.is_set():
                scrape(own)
                scrapes[0] += 1

    threads = [threading.Thread(target=hammer, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        busy_start = _poll_stats(scrape(client))
        wait_for(
            lambda: _poll_stats(scrape(client))[0] >= busy_start[0] + 2,
            timeout=30,
            what="2 polls while two clients scrape without pause",
        )
        busy_end = _poll_stats(scrape(client))
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)

    def mean(start: tuple[float, float], end: tuple[float, float]) -> float:
        return (end[1] - start[1]) / (end[0] - start[0])

    print(
        f"poll of 10,000 guests: {mean(quiet_start, quiet_end) * 1000:.0f} ms unscraped, "
        f"{mean(busy_start, busy_end) * 1000:.0f} ms during {scrapes[0]} back-to-back scrapes"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_prometheus_scrapes_it_with_the_deploy_config(tmp_path: Path) -> None:
    prometheus = tool("prometheus")
    deploy = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    deploy.pop("rule_files", None)  # the alert rules are checked by their own tests
    deploy["global"] |= {"scrape_interval": "1s", "evaluation_interval": "1s"}
    with simulator() as sim, watching(watcher_config(sim, tmp_path)) as client:
        job = deploy["scrape_configs"][0]
        job["static_configs"] = [{"targets": [str(client.base_url.netloc.decode())]}]
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(deploy))
        port = _free_port()
        log = (tmp_path / "prometheus.log").open("wb")
        server = subprocess.Popen(
            [
                prometheus,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=log,
        )
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as prom:

                def scraped() -> list[Any] | None:
                    try:
                        answer = prom.get("/api/v1/query", params={"query": "pvewatch_build_info"})
                    except httpx.TransportError:
                        return None
                    if answer.status_code != 200:  # still starting
                        return None
                    result: list[Any] = answer.json()["data"]["result"]
                    return result

                (series,) = wait_for(scraped, timeout=30, what="Prometheus to scrape pvewatch")
                targets = prom.get("/api/v1/targets").json()["data"]["activeTargets"]
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()
    assert series["metric"]["job"] == "pvewatch"
    assert [(t["labels"]["job"], t["health"]) for t in targets] == [("pvewatch", "up")]
