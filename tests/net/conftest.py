"""A self-signed certificate for the TLS tests."""

from __future__ import annotations

import pytest

from pvewatch.simulator.certs import SelfSigned, make_self_signed


@pytest.fixture(scope="session")
def cert() -> SelfSigned:
    return make_self_signed("pvewatch-test")
