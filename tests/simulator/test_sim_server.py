"""The server as a whole: TLS with a pinnable fingerprint, a busy port, background churn,
the offline timeline over HTTP."""

from __future__ import annotations

import io
import socket
import ssl
import time

import httpx

from pvewatch.simulator import SimOptions
from pvewatch.simulator.certs import fingerprint_of
from pvewatch.simulator.server import SimServer, serve_forever
from tests.simulator.conftest import SimFactory
from tests.simulator.support import TOKEN, TOKEN_HEADER, FakeClock, rows_by_id


def test_tls_serves_the_certificate_whose_fingerprint_it_printed(make_sim: SimFactory) -> None:
    sim = make_sim(tls=True)
    assert sim.url.startswith("https://127.0.0.1:")
    assert sim.cert_pem is not None
    host, port = sim.url.removeprefix("https://").rsplit(":", 1)
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw) as conn,
    ):
        der = conn.getpeercert(binary_form=True)
    assert der is not None
    assert fingerprint_of(der) == sim.fingerprint
    trusting = ssl.create_default_context(cadata=sim.cert_pem.decode())
    with httpx.Client(verify=trusting, headers=TOKEN_HEADER) as client:
        assert client.get(sim.url + "/api2/json/version").status_code == 200


def test_plain_http_has_no_fingerprint(sim: SimServer) -> None:
    assert sim.url.startswith("http://")
    assert sim.fingerprint is None


def test_busy_port_exits_2_with_a_message() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        options = SimOptions(listen=f"127.0.0.1:{port}", tls=False, tokens=(TOKEN,))
        assert serve_forever(options, out=io.StringIO()) == 2


def test_background_churn_makes_tasks() -> None:
    options = SimOptions(listen="127.0.0.1:0", tls=False, churn_per_min=6000, guests=30)
    with SimServer(options) as sim, httpx.Client(base_url=sim.url + "/api2/json") as api:
        deadline = time.monotonic() + 10
        while not api.get("/cluster/tasks").json()["data"]:
            assert time.monotonic() < deadline, "no churn task within 10 s"
            time.sleep(0.05)


def test_offline_timeline_over_http_with_a_short_expiry(
    make_sim: SimFactory, clock: FakeClock
) -> None:
    sim = make_sim(offline_expiry_secs=5)
    guest = next(g.id for g in sim.cluster.guests.values() if g.node == "pve1" and g.live)
    with (
        httpx.Client(base_url=sim.url + "/api2/json", headers=TOKEN_HEADER) as api,
        httpx.Client(base_url=sim.url + "/_sim") as ctl,
    ):
        ctl.patch("/resources/node/pve1", json={"status": "offline"}).raise_for_status()
        rows = rows_by_id(api.get("/cluster/resources"))
        assert rows["node/pve1"]["status"] == "offline"
        assert rows[guest]["status"] == "running"
        clock.advance(5)
        rows = rows_by_id(api.get("/cluster/resources"))
        assert rows[guest]["status"] == "unknown"
        assert "name" not in rows[guest]
        status = {e["id"]: e for e in api.get("/cluster/status").json()["data"]}
        assert status["node/pve1"]["online"] == 0
