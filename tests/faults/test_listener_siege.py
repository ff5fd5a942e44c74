"""The listener of a real `pvewatch run` (a subprocess, its descriptors limited to 200)
under attack: a slowloris of 400 connections sending one header byte every few seconds,
and a flood of 65 KB headers over TLS. Its threads, descriptors and memory stay bounded,
/metrics keeps answering with basic auth, and the polls go on. Figures: docs/RELIABILITY.md."""

from __future__ import annotations

import asyncio
import os
import re
import resource
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from pvewatch.http.gate import ACCEPT_BATCH, Limits
from pvewatch.simulator.certs import make_self_signed
from tests.e2e.harness import TOKEN, simulator, wait_for
from tests.faults.figures import Figures
from tests.faults.support import cluster_entry, write_config

FD_LIMIT = 200
SLOW_CONNECTIONS = 400
FLOOD_CONNECTIONS, FLOOD_HEADERS, FLOOD_HEADER_BYTES = 60, 99, 65_000
# bcrypt("s3cret"), cost 4 (the attackers never get as far as a password).
HASH = "$2b$04$Xj2nZ1wnO1VK2sUKVfzZhO59DcE8tZY0ifr.bgQgwZRBz00mwLi92"
AUTH = ("prometheus", "s3cret")
CAP = Limits().max_connections
# Per connection the listener holds at most a 32 KiB request head, the TLS layer's
# buffers and one read; the rest is allocator slack. Measured: +6 MB to +25 MB.
MAX_RSS_GROWTH = 64 * 1024**2
# The main loop's default executor (store calls through asyncio.to_thread) starts its
# threads lazily, up to min(32, cpus + 4), whenever the polls and deliveries overlap; a
# CI run saw +3 during the attack. A thread per connection would be 400.
EXECUTOR_THREADS = min(32, (os.cpu_count() or 1) + 4)


@dataclass
class Daemon:
    pid: int
    url: str
    samples: list[tuple[int, int, int]] = field(default_factory=list)  # fds, threads, rss

    def sample(self) -> tuple[int, int, int]:
        fds = len(os.listdir(f"/proc/{self.pid}/fd"))
        threads = len(os.listdir(f"/proc/{self.pid}/task"))
        with open(f"/proc/{self.pid}/statm") as statm:
            rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        self.samples.append((fds, threads, rss))
        return fds, threads, rss

    def peak(self, index: int) -> int:
        return max(s[index] for s in self.samples)


@asynccontextmanager
async def running_daemon(tmp: Path, *, tls: bool) -> AsyncIterator[Daemon]:
    """`pvewatch run` watching a simulator, its listener with basic auth (and TLS)."""
    pair = make_self_signed("listener")
    (tmp / "web.crt").write_bytes(pair.cert_pem)
    (tmp / "web.key").write_bytes(pair.key_pem)
    (tmp / "token").write_text(TOKEN + "\n")
    web: dict[str, object] = {"listen": "127.0.0.1:0", "basic_auth_users": {AUTH[0]: HASH}}
    if tls:
        files = {"cert_file": str(tmp / "web.crt"), "key_file": str(tmp / "web.key")}
        web["tls_server_config"] = files
    with simulator() as sim:
        cluster = cluster_entry("siege", sim, token_file=str(tmp / "token"))
        config = write_config(tmp, [cluster], {}, http=web)
        log = tmp / "stderr.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "pvewatch", "run", "-c", str(config), "--log-level", "info"],
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT)),
        )
        try:
            found = wait_for(
                lambda: re.search(r"on (https?://127\.0\.0\.1:\d+)", log.read_text()),
                what="the listener's address in the log",
            )
            daemon = Daemon(process.pid, found[1])
            async with _client(daemon, tmp) as client:
                await _until_ready(client)
            yield daemon
        finally:
            process.terminate()
            process.wait(timeout=30)
        text = log.read_text()
        assert "Too many open files" not in text, text[-2000:]
        assert "Traceback" not in text, text[-2000:]


@asynccontextmanager
async def _client(daemon: Daemon, tmp: Path) -> AsyncIterator[httpx.AsyncClient]:
    verify = ssl.create_default_context(cafile=str(tmp / "web.crt"))
    # A connection per request, as a scraper that comes back after its interval: one
    # left idle may be taken back for a newcomer (a Go client, like Prometheus, retries).
    fresh = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=daemon.url, verify=verify, auth=AUTH, timeout=10, limits=fresh
    ) as c:
        yield c


async def _until_ready(client: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + 30
    while (await client.get("/readyz")).status_code != 200:
        assert time.monotonic() < deadline, "the daemon did not become ready"
        await asyncio.sleep(0.2)


async def _scrape(client: httpx.AsyncClient) -> float:
    """Seconds for one authenticated /metrics scrape, which must succeed."""
    started = time.monotonic()
    answer = await client.get("/metrics")
    assert answer.status_code == 200
    assert "pvewatch_polls_total" in answer.text
    return time.monotonic() - started


def _slowloris(port: int, stop: threading.Event, dropped: list[int]) -> None:
    """SLOW_CONNECTIONS slow clients, on a thread and loop of their own so that the
    scrapes of the test are not queued behind them."""

    async def one() -> None:
        # Half a request, then a header byte every 2 s; back 2 s after being dropped.
        while not stop.is_set():
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                while not stop.is_set():
                    await asyncio.sleep(2.0)
                    writer.write(b"a")
                    await writer.drain()
                writer.close()
            except OSError:
                dropped.append(1)
            await asyncio.sleep(2.0)

    async def crowd() -> None:
        await asyncio.gather(*(one() for _ in range(SLOW_CONNECTIONS)))

    asyncio.run(crowd())


async def _watch(daemon: Daemon, every: float, until: Callable[[], bool]) -> None:
    while not until():
        daemon.sample()
        await asyncio.sleep(every)


async def test_a_slowloris_leaves_descriptors_threads_and_memory_bounded(
    tmp_path: Path, figures: Figures
) -> None:
    async with running_daemon(tmp_path, tls=False) as daemon, _client(daemon, tmp_path) as client:
        fds0, threads0, rss0 = daemon.sample()
        port = int(daemon.url.rsplit(":", 1)[1])
        stop, dropped = threading.Event(), list[int]()
        attack = asyncio.create_task(asyncio.to_thread(_slowloris, port, stop, dropped))
        watcher = asyncio.create_task(_watch(daemon, 0.2, stop.is_set))
        scrapes = []
        # Two request deadlines: the first stalled connections are dropped by then.
        ends = time.monotonic() + 2 * Limits().request_secs + 2
        try:
            while daemon.sample()[0] < fds0 + CAP:  # the crowd is in: every place taken
                assert time.monotonic() < ends, "the slow clients never filled the listener"
                await asyncio.sleep(0.1)
            while time.monotonic() < ends:
                scrapes.append(await _scrape(client))
                await asyncio.sleep(0.5)
        finally:
            stop.set()
            await asyncio.gather(attack, watcher)
        await _until_ready(client)  # the polls went on
    figures.add("garbage_requests", SLOW_CONNECTIONS + len(dropped))
    figures.measure("slowloris_peak_descriptors_over_idle", daemon.peak(0) - fds0)
    figures.measure("slowloris_idle_descriptors", fds0)
    figures.measure("slowloris_peak_threads_over_idle", daemon.peak(1) - threads0)
    figures.measure("slowloris_peak_rss_growth_bytes", daemon.peak(2) - rss0)
    figures.measure("slowloris_slowest_scrape_secs", max(scrapes))
    assert daemon.peak(0) <= fds0 + CAP + 2 * ACCEPT_BATCH, (
        f"{daemon.peak(0)} descriptors (idle: {fds0})"
    )
    assert daemon.peak(1) <= threads0 + EXECUTOR_THREADS, (
        f"{daemon.peak(1)} threads (idle: {threads0})"
    )
    assert daemon.peak(2) - rss0 < MAX_RSS_GROWTH
    assert len(dropped) >= SLOW_CONNECTIONS, "the stalled connections were not dropped"


async def _flood_client(port: int) -> None:
    """99 headers of 65 KB each, as fast as the listener takes them."""
    tls = ssl.create_default_context()
    tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        for n in range(FLOOD_HEADERS):
            writer.write(b"X-Flood-%d: " % n + b"b" * FLOOD_HEADER_BYTES + b"\r\n")
            await writer.drain()
        writer.write(b"\r\n")
        await writer.drain()
        await asyncio.wait_for(reader.read(), 30)
    except (OSError, ssl.SSLError, TimeoutError):
        pass  # dropped: the expected end


async def test_a_header_flood_over_tls_keeps_memory_flat(tmp_path: Path, figures: Figures) -> None:
    async with running_daemon(tmp_path, tls=True) as daemon, _client(daemon, tmp_path) as client:
        _, _, rss0 = daemon.sample()
        port = int(daemon.url.rsplit(":", 1)[1])
        rounds = figures.scaled(3, 20)
        for _ in range(rounds):
            flood = asyncio.gather(*(_flood_client(port) for _ in range(FLOOD_CONNECTIONS)))
            watcher = asyncio.create_task(_watch(daemon, 0.05, flood.done))
            await flood
            await watcher
            await _scrape(client)
        daemon.sample()
    growth = daemon.peak(2) - rss0
    figures.add("garbage_requests", rounds * FLOOD_CONNECTIONS)
    figures.measure("header_flood_peak_rss_growth_bytes", growth)
    figures.measure("header_flood_idle_rss_bytes", rss0)
    assert growth < MAX_RSS_GROWTH, f"RSS grew by {growth / 1024**2:.0f} MB"
