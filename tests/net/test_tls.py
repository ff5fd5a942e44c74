"""TLS settings: fingerprint forms and which checks each setting turns on."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvewatch.config.types import TlsConfig
from pvewatch.net.tls import build_ssl_context, normalize_fingerprint
from pvewatch.simulator.certs import SelfSigned

CANONICAL = ":".join(["AB"] * 32)


@pytest.mark.parametrize(
    "written",
    [CANONICAL, CANONICAL.lower(), "AB" * 32, f"  {CANONICAL}\n", "ab" * 16 + "AB" * 16],
)
def test_fingerprint_forms(written: str) -> None:
    assert normalize_fingerprint(written) == CANONICAL


@pytest.mark.parametrize(
    "written", ["", "AB:CD", "AB" * 31, "AB" * 33, "ZZ" * 32, CANONICAL.replace(":", "-")]
)
def test_not_a_fingerprint(written: str) -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        normalize_fingerprint(written)


@given(st.binary(min_size=32, max_size=32), st.booleans(), st.booleans())
def test_normalize_is_idempotent_on_any_digest(digest: bytes, colons: bool, lower: bool) -> None:
    text = (":" if colons else "").join(f"{b:02X}" for b in digest)
    text = text.lower() if lower else text
    once = normalize_fingerprint(text)
    assert normalize_fingerprint(once) == once
    assert bytes.fromhex(once.replace(":", "")) == digest


def test_default_verifies_certificate_and_hostname() -> None:
    context = build_ssl_context(TlsConfig())
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


def test_ca_file_verifies_certificate_and_hostname(cert: SelfSigned, tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_bytes(cert.cert_pem)
    context = build_ssl_context(TlsConfig(ca_file=tmp_path / "ca.pem"))
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


@pytest.mark.parametrize(
    "tls", [TlsConfig(fingerprints=(CANONICAL,)), TlsConfig(verify=False)], ids=["pin", "off"]
)
def test_pin_or_off_leaves_the_ca_check_out(tls: TlsConfig) -> None:
    context = build_ssl_context(tls)
    assert context.verify_mode == ssl.CERT_NONE
    assert not context.check_hostname
