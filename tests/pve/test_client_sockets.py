"""PveClient over real sockets: TLS verification, pinning, timeouts, resets, failover."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pvewatch.config.types import ClusterConfig, TlsConfig
from pvewatch.errors import SourceUnreachable
from pvewatch.pve.client import PveClient
from pvewatch.secret import Secret
from pvewatch.simulator.certs import make_self_signed
from tests.pve.support import TlsServer

TOKEN = "pvewatch@pve!monitor=0b2c7a9e-3f4d-4c1e-9a8b-7d6e5f4a3b2c"
TOKEN_SECRET = TOKEN.rsplit("=", 1)[1]


def cluster(*endpoints: str, tls: TlsConfig, timeout: float = 5.0) -> ClusterConfig:
    return ClusterConfig(
        name="lab", endpoints=endpoints, token=Secret(TOKEN), tls=tls, timeout_secs=timeout
    )


async def test_pinned_fingerprint_is_accepted_and_token_sent(tls_server: TlsServer) -> None:
    tls = TlsConfig(fingerprints=(tls_server.cert.fingerprint,))
    async with PveClient(cluster(tls_server.url, tls=tls)) as pve:
        assert (await pve.version())["version"] == "9.1.9"
    assert tls_server.state.headers[0]["Authorization"] == f"PVEAPIToken={TOKEN}"


async def test_pin_accepts_lower_case_and_one_of_several(tls_server: TlsServer) -> None:
    other = make_self_signed().fingerprint
    pins = (other, tls_server.cert.fingerprint.lower().replace(":", ""))
    async with PveClient(cluster(tls_server.url, tls=TlsConfig(fingerprints=pins))) as pve:
        assert await pve.version()


async def test_wrong_pin_refuses_before_any_request(
    tls_server: TlsServer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = make_self_signed().fingerprint
    caplog.set_level(logging.DEBUG)
    tls = TlsConfig(fingerprints=(wrong,))
    async with PveClient(cluster(tls_server.url, tls=tls)) as pve:
        with pytest.raises(SourceUnreachable) as caught:
            await pve.version()
    message = str(caught.value)
    assert tls_server.url in message
    assert "/api2/json/version" in message
    assert f"expected {wrong}" in message
    assert f"seen {tls_server.cert.fingerprint}" in message
    assert tls_server.state.request_lines == 0  # so the token never reached it
    assert TOKEN_SECRET not in message + repr(caught.value) + caplog.text


async def test_ca_file_verifies_the_server(tls_server: TlsServer, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(tls_server.cert.cert_pem)
    async with PveClient(cluster(tls_server.url, tls=TlsConfig(ca_file=ca))) as pve:
        assert await pve.version()


async def test_untrusted_self_signed_is_refused(tls_server: TlsServer) -> None:
    async with PveClient(cluster(tls_server.url, tls=TlsConfig())) as pve:
        with pytest.raises(SourceUnreachable, match="CERTIFICATE_VERIFY_FAILED"):
            await pve.version()
    assert tls_server.state.request_lines == 0


async def test_verify_false_connects_and_warns(
    tls_server: TlsServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with PveClient(cluster(tls_server.url, tls=TlsConfig(verify=False))) as pve:
        assert await pve.version()
    assert "TLS verification is off" in caplog.text


async def test_timeout_is_unreachable(tls_server: TlsServer) -> None:
    tls_server.state.mode = "hang"
    tls = TlsConfig(fingerprints=(tls_server.cert.fingerprint,))
    async with PveClient(cluster(tls_server.url, tls=tls, timeout=0.3)) as pve:
        with pytest.raises(SourceUnreachable, match=r"timed out after 0\.3 s"):
            await pve.version()


async def test_connection_reset_is_unreachable(tls_server: TlsServer) -> None:
    tls_server.state.mode = "reset"
    tls = TlsConfig(fingerprints=(tls_server.cert.fingerprint,))
    async with PveClient(cluster(tls_server.url, tls=tls)) as pve:
        with pytest.raises(SourceUnreachable, match="/api2/json/version"):
            await pve.version()


async def test_fails_over_from_dead_port_and_remembers(
    tls_server: TlsServer, dead_endpoint: str
) -> None:
    tls = TlsConfig(fingerprints=(tls_server.cert.fingerprint,))
    async with PveClient(cluster(dead_endpoint, tls_server.url, tls=tls)) as pve:
        assert await pve.version()
        assert pve.active_endpoint == tls_server.url
        assert await pve.version()
    assert tls_server.state.request_lines == 2


async def test_all_endpoints_dead_names_each(dead_endpoint: str) -> None:
    tls = TlsConfig(verify=False)
    async with PveClient(cluster(dead_endpoint, dead_endpoint, tls=tls)) as pve:
        with pytest.raises(SourceUnreachable, match="all 2 endpoints failed") as caught:
            await pve.version()
    assert str(caught.value).count(dead_endpoint) == 2
    assert "cannot connect" in str(caught.value)
