"""Shared pieces of the read API and status page end-to-end tests (and of `make
screenshot`): the real daemon on a simulator with a webhook that can only fail, its
listener's URL, and a headless Chromium driven by selenium through Debian's chromedriver."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from pvewatch.config.load import load_config
from pvewatch.config.types import Config
from pvewatch.simulator.server import SimServer
from pvewatch.sinks.table import SINK_TYPES
from tests.e2e.harness import baseline_recorded, control, running_watcher, wait_for
from tests.e2e.test_webhook import write_config
from tests.need import need

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Secret parts of the config, which no answer may show.
URL_TOKEN = "hooks/T0KEN-in-the-path"
HOOK_SECRET = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"


def closed_port() -> int:
    """A local port nobody listens on (a webhook there is refused, then dead)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def daemon_config(sim: SimServer, tmp: Path, **http: Any) -> Config:
    """One cluster on `sim`, a webhook that is refused (dead after one attempt), a log
    sink, no holds, and the listener on a free port with `http` (basic_auth_users, ...)."""
    url = f"http://127.0.0.1:{closed_port()}/{URL_TOKEN}"
    path = write_config(sim, tmp, url, retry={"max_attempts": 1, "initial_secs": 0.1})
    doc = json.loads(path.read_text())
    doc["http"] |= http
    doc["rules"] = {"shape": {"hold": False, "flapping": False}}
    path.write_text(json.dumps(doc))
    return load_config(path, {"HOOK_SECRET": HOOK_SECRET}, sink_types=SINK_TYPES)


@contextmanager
def daemon(config: Config) -> Iterator[str]:
    """The daemon running `config` until the block ends; yields its listener's URL once
    the baseline is stored."""
    urls: list[str] = []
    with running_watcher(config, on_listening=urls.append):
        wait_for(lambda: urls, what="the listener")
        wait_for(lambda: baseline_recorded(config), what="the baseline")
        yield urls[-1]


def sim_call(sim: SimServer, method: str, path: str, body: Any = None) -> Any:
    with control(sim) as c:
        answer = c.request(method, path, json=body)
        answer.raise_for_status()
        return answer.json() if answer.content else None


def stop_by(sim: SimServer, vmid: int, user: str) -> str:
    """`user` stops guest `vmid` (a qmstop task, then the status): the UPID."""
    rows = sim_call(sim, "GET", "/resources")
    node = next(r["node"] for r in rows if r["id"] == f"qemu/{vmid}")
    task = {"type": "qmstop", "id": str(vmid), "node": node, "user": user, "status": "OK"}
    upid: str = sim_call(sim, "POST", "/tasks", task)["upid"]
    sim_call(sim, "PATCH", f"/resources/qemu/{vmid}", {"status": "stopped"})
    return upid


def api(url: str, path: str, **params: str) -> Any:
    answer = httpx.get(url + path, params=params, timeout=10)
    answer.raise_for_status()
    return answer.json()


@contextmanager
def browser(width: int = 1000, height: int = 1000) -> Iterator[Any]:
    """A headless Chromium (Debian's chromium and chromium-driver) under selenium."""
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        need("chromium is not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
