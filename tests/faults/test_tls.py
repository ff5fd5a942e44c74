"""TLS that must not be trusted: a certificate that matches no pin, one signed by another
CA, an expired one, one for another host, and plain HTTP where HTTPS is expected. Each is
refused during the handshake, before the request (and so the token) is written, with a
message that says what was seen. Pins and settings alone: tests/pve/test_client_sockets.py
and tests/net/test_tls.py."""

from __future__ import annotations

import dataclasses
import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pvewatch.config.types import ClusterConfig, TlsConfig
from pvewatch.errors import SourceUnreachable
from pvewatch.pve.client import PveClient
from pvewatch.secret import Secret
from pvewatch.simulator.certs import make_self_signed
from tests.e2e.harness import control, simulator
from tests.faults.certs import Authority, Issued, issue, make_authority
from tests.faults.figures import Figures
from tests.faults.rig import fault_config, watching
from tests.pve.support import ServerState, TlsTestServer

SECRET = "tls-canary-5b1e9d2c-8f47-4a36-b0d1-c3e2f1a0b9d8"
TOKEN = f"pvewatch@pve!tls={SECRET}"


@pytest.fixture(scope="module")
def ca() -> Authority:
    return make_authority()


@contextmanager
def _tls_server(issued: Issued, tmp: Path) -> Iterator[tuple[str, ServerState]]:
    (tmp / "server.pem").write_bytes(issued.cert_pem)
    (tmp / "server.key").write_bytes(issued.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp / "server.pem", tmp / "server.key")
    state = ServerState()
    server = TlsTestServer(context, state)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class PlainHttp:
    """Answers every connection like an HTTP server would, and keeps what it was sent."""

    sock: socket.socket
    received: list[bytes] = field(default_factory=list)

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    self.received.append(conn.recv(65536))
                except OSError:
                    self.received.append(b"")
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


@contextmanager
def _plain_http() -> Iterator[tuple[str, PlainHttp]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        server = PlainHttp(sock)
        thread = threading.Thread(target=server.serve, daemon=True)
        thread.start()
        yield f"https://127.0.0.1:{sock.getsockname()[1]}", server
        sock.shutdown(socket.SHUT_RDWR)


async def _refused(url: str, tls: TlsConfig) -> str:
    cluster = ClusterConfig(name="tls", endpoints=(url,), token=Secret(TOKEN), tls=tls)
    async with PveClient(cluster) as pve:
        with pytest.raises(SourceUnreachable) as caught:
            await pve.resources()
    return str(caught.value)


@pytest.mark.parametrize(
    ("case", "seen"),
    [
        ("wrong pin", "does not match the pinned fingerprint"),
        ("another CA", "unable to get local issuer certificate"),
        ("expired", "certificate has expired"),
        ("another host", "IP address mismatch"),
    ],
)
async def test_an_untrusted_certificate_never_receives_a_request(
    case: str,
    seen: str,
    ca: Authority,
    tmp_path: Path,
    figures: Figures,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    issued, tls = issue(ca), TlsConfig(ca_file=tmp_path / "ca.pem")
    if case == "wrong pin":
        tls = TlsConfig(fingerprints=(make_self_signed().fingerprint,))
    elif case == "another CA":
        (tmp_path / "ca.pem").write_bytes(make_authority("another CA").cert_pem)
    elif case == "expired":
        issued = issue(ca, expired=True)
    elif case == "another host":
        issued = issue(ca, host="10.9.8.7")
    with _tls_server(issued, tmp_path) as (url, state):
        message = await _refused(url, tls)
    assert seen in message
    assert url in message
    assert state.request_lines == 0, "the server got a request: the token went out"
    assert SECRET not in message + caplog.text
    figures.add("tls_refusals")


async def test_plain_http_where_https_is_expected_is_named_and_gets_no_token(
    figures: Figures, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with _plain_http() as (url, server):
        message = await _refused(url, TlsConfig())
    assert "the answer is not TLS (plain HTTP on an https:// endpoint?)" in message
    (hello,) = server.received
    assert hello[:1] == b"\x16", "the first bytes were not a TLS handshake"
    assert SECRET.encode() not in hello
    assert SECRET not in message + caplog.text
    figures.add("tls_refusals")


async def test_a_pin_mismatch_fails_polls_and_the_simulator_sees_nothing(
    tmp_path: Path, figures: Figures
) -> None:
    with simulator() as sim:
        config = fault_config(sim, tmp_path)
        tls = TlsConfig(fingerprints=(make_self_signed().fingerprint,))
        cluster = dataclasses.replace(config.clusters[0], tls=tls)
        async with watching(sim, dataclasses.replace(config, clusters=(cluster,))) as rig:
            results = [await rig.poll() for _ in range(3)]
            events = rig.stored()
        with control(sim) as c:
            served = c.get("/stats").json()["total"]
    assert [r.ok for r in results] == [False] * 3
    assert all("does not match the pinned fingerprint" in (r.error or "") for r in results)
    assert served == 0
    assert [e.type for e in events] == ["source.unreachable"]
    figures.add("tls_refusals", 3)
