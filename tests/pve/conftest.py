"""Fixtures for the PVE client tests: a certificate, a TLS test server, a dead port."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pvewatch.simulator.certs import SelfSigned, make_self_signed
from tests.pve.support import ServerState, TlsServer, TlsTestServer


@pytest.fixture(scope="session")
def cert() -> SelfSigned:
    return make_self_signed("pvewatch-test")


@pytest.fixture
def tls_server(cert: SelfSigned, tmp_path: Path) -> Iterator[TlsServer]:
    (tmp_path / "cert.pem").write_bytes(cert.cert_pem)
    (tmp_path / "key.pem").write_bytes(cert.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    state = ServerState()
    server = TlsTestServer(context, state)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield TlsServer(f"https://127.0.0.1:{server.server_address[1]}", cert, state)
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def dead_endpoint() -> Iterator[str]:
    """A bound but not listening port: connecting to it is refused at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"https://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()
