"""No secret is ever exposed. Canary values for the PVE token, the password, the ticket
and CSRF token the simulator issued, the webhook secret, URL token and header, and the
metrics password go into one config of two clusters (two simulators); `pvewatch run
--log-level debug` goes through faults (a refused ticket and login, an error page that
echoes credentials back, the cluster's own and another cluster's, resets, garbage), a
failing webhook receiver, and scrapes with good, bad and garbled credentials. The log,
the events, the store files, `pvewatch events`, `check-config`, the metrics and every
webhook body and header (but the one it is meant for) are searched: zero hits."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from pvewatch.config.load import load_config
from pvewatch.simulator import SimOptions
from pvewatch.simulator.server import SimServer
from pvewatch.sinks.table import SINK_TYPES
from pvewatch.store.sqlite import SqliteStore
from tests.e2e.harness import control, wait_for
from tests.faults.figures import Figures
from tests.faults.receiver import Receiver
from tests.faults.rig import RESOURCES, body, fault, status
from tests.faults.support import cluster_entry, write_config

TOKEN_SECRET = "c4a7e1f0-9b2d-4e6a-8c3f-canary000001"
TOKEN = f"pvewatch@pve!canary={TOKEN_SECRET}"
USER = "watcher@pve"
PASSWORD = "canary-password-7d3f9a51"
HOOK_KEY = b"canary-webhook-key-0123456789abcdef"
HOOK_SECRET = "whsec_" + base64.b64encode(HOOK_KEY).decode()
URL_TOKEN = "canary-url-token-91ab4c"
HEADER_SECRET = "canary-header-77e1d0"
SCRAPE_PASSWORD = "canary-scrape-password-3c2b"
SCRAPE_HASH = "$2b$04$r1iJQGZg.fDxIpiXfgkh9.rqJMhwaVsgS61WjlxnPXD4YO4sF.hqO"  # of the above


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _simulators() -> Iterator[tuple[SimServer, SimServer]]:
    """One for the token, one for the password. The second one's clock stands still, so
    the ticket it issues can be asked for again: the same."""
    now = time.time()
    token = SimOptions(listen="127.0.0.1:0", guests=10, seed=3, tokens=(TOKEN,))
    password = SimOptions(listen="127.0.0.1:0", guests=10, seed=4, user=USER, password=PASSWORD)
    with SimServer(token) as by_token, SimServer(password, clock=lambda: now) as by_password:
        yield by_token, by_password


def _write_config(
    tmp: Path, sims: tuple[SimServer, SimServer], hook: Receiver, metrics_port: int
) -> Path:
    (tmp / "password").write_text(PASSWORD + "\n")
    clusters = [
        cluster_entry("tok", sims[0], token=TOKEN, source_failure_threshold=2),
        cluster_entry("pw", sims[1], username=USER, password_file="password"),
    ]
    hook_sink = {
        "type": "webhook",
        "url": f"{hook.url}?token={URL_TOKEN}",
        "headers": {"Authorization": f"Bearer {HEADER_SECRET}"},
        "secret": HOOK_SECRET,
        "timeout_secs": 2,
        "retry": {"initial_secs": 0.2, "max_secs": 1},
    }
    http = {"listen": f"127.0.0.1:{metrics_port}", "basic_auth_users": {"prometheus": SCRAPE_HASH}}
    return write_config(tmp, clusters, {"hook": hook_sink}, http=http)


def _canaries(sim: SimServer) -> dict[str, str]:
    issued = sim.auth.login({"username": USER, "password": PASSWORD})
    assert issued is not None
    ticket, csrf = str(issued["ticket"]), str(issued["CSRFPreventionToken"])
    return {
        "token": TOKEN,
        "token secret": TOKEN_SECRET,
        "password": PASSWORD,
        "ticket": ticket,
        "ticket signature": ticket.rpartition("::")[2],
        "csrf token": csrf,
        "webhook secret": HOOK_SECRET,
        "webhook key": HOOK_KEY.decode(),
        "webhook key base64": HOOK_SECRET.removeprefix("whsec_"),
        "url token": URL_TOKEN,
        "header secret": HEADER_SECRET,
        "scrape password": SCRAPE_PASSWORD,
        "scrape hash": SCRAPE_HASH,
    }


def _faults(sim: SimServer, *echoed: str, logins: bool = False) -> None:
    """Failures for one cluster, among them an error page that repeats credentials: its
    own (the client scrubs them), and another cluster's (the log masks them)."""
    echo = json.dumps({"data": None, "message": f"proxy saw {' '.join(echoed)}"})
    faults = [
        {**status(401, 2), "path": RESOURCES},  # with a ticket: a new login
        body(echo, 1, 502),
        fault("reset", 1),
        fault("garbage", 1),
    ]
    if logins:  # a login refused once
        faults.append({"kind": "status", "code": 401, "count": 1, "path": "/access/ticket"})
    with control(sim) as c:
        c.post("/faults", json=faults).raise_for_status()


def _scrapes(port: int) -> list[str]:
    """A scrape with the password, one with a wrong one, and a garbled header."""
    url = f"http://127.0.0.1:{port}/metrics"
    texts = []
    for auth in (("prometheus", SCRAPE_PASSWORD), ("prometheus", "wrong"), None):
        with httpx.Client(timeout=10) as client:
            headers = {} if auth else {"Authorization": "Basic %%%garbled"}
            answer = client.get(url, auth=auth, headers=headers)
        texts.append(f"{answer.status_code} {answer.headers} {answer.text}")
    assert texts[0].startswith("200"), texts[0][:200]
    assert texts[1].startswith("401")
    return texts


def _run_command(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pvewatch", *args], capture_output=True, text=True, timeout=60
    )
    return done.stdout + done.stderr


def test_no_secret_appears_anywhere(tmp_path: Path, figures: Figures) -> None:
    hook = Receiver(mode="status:500").up()
    metrics_port = _free_port()
    try:
        with _simulators() as sims:
            config = _write_config(tmp_path, sims, hook, metrics_port)
            canaries = _canaries(sims[1])
            stderr = (tmp_path / "stderr.log").open("wb")
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pvewatch",
                    "run",
                    "-c",
                    str(config),
                    "--log-level",
                    "debug",
                ],
                stdout=stderr,
                stderr=stderr,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            try:
                wait_for(lambda: (tmp_path / "state.db").exists(), what="the store")
                _faults(sims[0], TOKEN, PASSWORD)
                _faults(sims[1], canaries["ticket"], canaries["csrf token"], TOKEN, logins=True)
                for sim in sims:
                    with control(sim) as c:
                        rows = c.get("/resources").json()
                        for row in [r for r in rows if r.get("status") == "stopped"][:2]:
                            c.patch(f"/resources/{row['id']}", json={"status": "running"})
                wait_for(lambda: len(hook.requests) >= 3, timeout=30, what="failed deliveries")
                hook.mode = "ok"
                wait_for(lambda: len(hook.delivered_ids()) >= 3, timeout=30, what="deliveries")
                for sim in sims:
                    with control(sim) as c:
                        wait_for(lambda: c.get("/faults").json() == [], what="every fault used")
                scrapes = _scrapes(metrics_port)
            finally:
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(timeout=30) == 0
                stderr.close()
    finally:
        hook.down()
    places = {
        "log at debug level": (tmp_path / "stderr.log").read_text(errors="replace"),
        "log sink": (tmp_path / "events.jsonl").read_text(),
        "pvewatch events": _run_command("events", "--json", "--since", "1d", "-c", str(config)),
        "check-config": _run_command("check-config", "-c", str(config)),
        "config repr": repr(load_config(config, {}, sink_types=SINK_TYPES)),
        **{f"metrics {n}": text for n, text in enumerate(scrapes)},
    }
    for suffix in ("", "-wal", "-shm"):
        db = tmp_path / f"state.db{suffix}"
        if db.exists():
            places[f"store file {db.name}"] = db.read_bytes().decode("latin-1")
    with SqliteStore(tmp_path / "state.db") as store:
        places["store events"] = json.dumps([e.to_dict() for e in store.events(limit=10_000)])
    for n, request in enumerate(hook.requests):
        headers = {k: v for k, v in request.headers.items() if k != "authorization"}
        places[f"webhook {n}"] = f"{request.path} {headers} {request.body.decode()}"
    assert "401" in places["log at debug level"], "the faults did not happen"
    assert places["log at debug level"].count("proxy saw ***") == 2, "no echo, or not masked"
    assert any(k.startswith("webhook") for k in places)
    hits = [
        f"{what} in {place}"
        for place, text in places.items()
        for what, canary in canaries.items()
        if canary in text
    ]
    figures.add("canary_places_searched", len(places))
    figures.add("canary_hits", len(hits))
    figures.add("faults_injected", 2 * 5 + 1 + 3)
    assert hits == []
