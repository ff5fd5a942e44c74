"""The listener on a real socket: paths, probes, basic auth, TLS, and that nothing one
client does holds up the others or the event loop."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from pvewatch.config.types import HttpConfig, WebTlsConfig
from pvewatch.errors import ConfigError
from pvewatch.http.listener import Listener
from pvewatch.model import Resource, Snapshot
from pvewatch.observability.metrics import Metrics
from pvewatch.observability.observe import Observer
from pvewatch.observability.probes import Heartbeat, Readiness
from pvewatch.secret import Secret
from pvewatch.simulator.certs import make_self_signed
from tests.e2e.harness import wait_for
from tests.prom import answered

# bcrypt("s3cret"), cost 4.
HASH = "$2b$04$Xj2nZ1wnO1VK2sUKVfzZhO59DcE8tZY0ifr.bgQgwZRBz00mwLi92"
LOCAL = "127.0.0.1:0"


def new_metrics() -> Metrics:
    return Metrics(clusters={"prod": 1.0}, sinks=["console"])


def new_readiness() -> Readiness:
    readiness = Readiness()
    readiness.reconfigure({"prod": 1.0})
    return readiness


def poll_ok(observer: Observer) -> None:
    vm = Resource("qemu/100", "qemu", "running", "pve1", "web1", 100)
    snap = Snapshot("prod", {vm.id: vm}, datetime.now(UTC), True)
    observer.poll_finished(
        "prod", ok=True, duration_secs=0.1, snapshot=snap, events=[], error_kind=None
    )


@contextmanager
def serving(
    config: HttpConfig | None = None,
    metrics: Metrics | None = None,
    heartbeat: Heartbeat | None = None,
    stale_after_secs: float = 10.0,
    readiness: Readiness | None = None,
) -> Iterator[Listener]:
    listener = Listener(
        config or HttpConfig(listen=LOCAL),
        metrics=metrics or new_metrics(),
        readiness=readiness or new_readiness(),
        heartbeat=heartbeat or Heartbeat(),
        stale_after_secs=stale_after_secs,
    )
    listener.start()
    try:
        yield listener
    finally:
        listener.close()


def test_paths_and_methods() -> None:
    metrics = new_metrics()
    poll_ok(metrics)
    with serving(metrics=metrics) as listener, httpx.Client(base_url=listener.url) as client:
        scraped = client.get("/metrics")
        assert scraped.status_code == 200
        assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert 'pvewatch_resource_up{cluster="prod",id="qemu/100"' in scraped.text
        om = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
        assert om.headers["content-type"].startswith("application/openmetrics-text")
        assert om.text.endswith("# EOF\n")
        assert client.get("/metrics?x=1").status_code == 200
        head = client.head("/metrics")
        assert (head.status_code, head.content) == (200, b"")
        assert int(head.headers["content-length"]) > 0
        assert client.get("/").status_code == 404
        assert client.get("/metrics/x").status_code == 404
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            refused = client.request(method, "/metrics", content=b"x" * 10)
            assert refused.status_code == 405, method
            assert refused.headers["allow"] == "GET, HEAD"


def test_big_scrapes_are_gzipped_when_asked() -> None:
    metrics = new_metrics()
    poll_ok(metrics)
    with serving(metrics=metrics) as listener, httpx.Client(base_url=listener.url) as client:
        answer = client.get("/metrics", headers={"Accept-Encoding": "gzip"})
        assert answer.headers["content-encoding"] == "gzip"
        assert "pvewatch_build_info" in answer.text  # httpx decoded it


def test_readyz_follows_the_polls() -> None:
    readiness = new_readiness()
    with serving(readiness=readiness) as listener, httpx.Client(base_url=listener.url) as client:
        before = client.get("/readyz")
        assert before.status_code == 503
        assert before.headers["content-type"] == "application/json"
        assert before.json()["checks"][0] == {
            "name": "cluster:prod",
            "ok": False,
            "detail": "no successful poll yet",
        }
        poll_ok(readiness)
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ok"
        readiness.poll_finished(
            "prod", ok=False, duration_secs=0.1, snapshot=None, events=[], error_kind="store"
        )
        refused = client.get("/readyz")
        assert refused.status_code == 503
        assert [c["name"] for c in refused.json()["checks"] if not c["ok"]] == ["store"]


def test_a_blocked_event_loop_fails_healthz_and_nothing_else() -> None:
    loop = asyncio.new_event_loop()
    heartbeat = Heartbeat()
    beating = loop.create_task(heartbeat.run(interval_secs=0.05))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    release = threading.Event()
    try:
        with (
            serving(heartbeat=heartbeat, stale_after_secs=0.5) as listener,
            httpx.Client(base_url=listener.url, timeout=5) as client,
        ):
            assert client.get("/healthz").status_code == 200
            loop.call_soon_threadsafe(release.wait)  # the loop is stuck from now on
            blocked = wait_for(
                lambda: answered(client, "/healthz", 503),
                what="/healthz to notice the blocked loop",
            )
            assert "blocked" in blocked.json()["checks"][0]["detail"]
            assert client.get("/metrics").status_code == 200  # scrapes still work
            release.set()
            wait_for(
                lambda: client.get("/healthz").status_code == 200,
                what="/healthz to recover",
            )
    finally:
        release.set()
        loop.call_soon_threadsafe(beating.cancel)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


def test_basic_auth() -> None:
    config = HttpConfig(listen=LOCAL, basic_auth_users={"prometheus": Secret(HASH)})
    with serving(config) as listener, httpx.Client(base_url=listener.url) as client:
        for auth in [None, ("prometheus", "wrong"), ("nobody", "s3cret"), ("prometheus", "")]:
            denied = client.get("/metrics", auth=auth)
            assert denied.status_code == 401, auth
            assert denied.headers["www-authenticate"].startswith('Basic realm="pvewatch"')
            assert "pvewatch_" not in denied.text
        assert client.get("/readyz").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Basic !!!"}).status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer x"}).status_code == 401
        for _ in range(2):  # the second time from the cache of passed passwords
            allowed = client.get("/metrics", auth=("prometheus", "s3cret"))
            assert allowed.status_code == 200
            assert "pvewatch_build_info" in allowed.text
        # A cached pass is for that password only.
        assert client.get("/metrics", auth=("prometheus", "s3cret2")).status_code == 401


def _tls_files(tmp: Path, name: str) -> tuple[Path, Path]:
    pair = make_self_signed(name)
    cert, key = tmp / f"{name}.crt", tmp / f"{name}.key"
    cert.write_bytes(pair.cert_pem)
    key.write_bytes(pair.key_pem)
    return cert, key


def _trusting(cert: Path, client_cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cert))
    if client_cert:
        context.load_cert_chain(*client_cert)
    return context


def test_tls_listener_serves_a_client_that_trusts_its_certificate(tmp_path: Path) -> None:
    cert, key = _tls_files(tmp_path, "listener")
    config = HttpConfig(listen=LOCAL, tls=WebTlsConfig(cert, key))
    with serving(config) as listener:
        assert listener.url.startswith("https://127.0.0.1:")
        with httpx.Client(base_url=listener.url, verify=_trusting(cert)) as client:
            assert client.get("/metrics").status_code == 200
        with (
            httpx.Client(base_url=listener.url) as untrusting,
            pytest.raises(httpx.ConnectError),
        ):
            untrusting.get("/metrics")
        plain = listener.url.replace("https://", "http://")
        with httpx.Client() as client, pytest.raises(httpx.HTTPError):
            client.get(f"{plain}/metrics")
        # The failed handshakes did not stop it.
        with httpx.Client(base_url=listener.url, verify=_trusting(cert)) as client:
            assert client.get("/healthz").status_code == 200


def test_client_certificates_when_required(tmp_path: Path) -> None:
    cert, key = _tls_files(tmp_path, "listener")
    client_pair = _tls_files(tmp_path, "prometheus")
    tls = WebTlsConfig(cert, key, client_pair[0], "RequireAndVerifyClientCert")
    with serving(HttpConfig(listen=LOCAL, tls=tls)) as listener:
        with httpx.Client(base_url=listener.url, verify=_trusting(cert, client_pair)) as client:
            assert client.get("/metrics").status_code == 200
        with (
            httpx.Client(base_url=listener.url, verify=_trusting(cert)) as anonymous,
            pytest.raises(httpx.HTTPError),
        ):
            anonymous.get("/metrics")


def test_a_client_that_sends_nothing_holds_up_no_one(tmp_path: Path) -> None:
    cert, key = _tls_files(tmp_path, "listener")
    config = HttpConfig(listen=LOCAL, tls=WebTlsConfig(cert, key))
    with serving(config) as listener:
        host, port = listener.url.removeprefix("https://").rsplit(":", 1)
        with (
            socket.create_connection((host, int(port))),  # no handshake, ever
            httpx.Client(base_url=listener.url, verify=_trusting(cert), timeout=3) as client,
        ):
            assert client.get("/healthz").status_code == 200


def test_an_address_in_use_is_a_config_error_naming_the_key() -> None:
    with serving() as first:
        taken = first.url.removeprefix("http://")
        second = Listener(
            HttpConfig(listen=taken),
            metrics=new_metrics(),
            readiness=new_readiness(),
            heartbeat=Heartbeat(),
        )
        with pytest.raises(ConfigError) as info:
            second.start()
    (problem,) = info.value.problems
    assert problem.startswith(f"http.listen: cannot listen on {taken}: ")


def test_close_releases_the_port_and_is_idempotent() -> None:
    with serving() as listener:
        url = listener.url
    listener.close()
    with httpx.Client() as client, pytest.raises(httpx.ConnectError):
        client.get(f"{url}/healthz")
