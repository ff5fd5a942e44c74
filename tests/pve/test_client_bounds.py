"""PveClient against answers too large or too slow, on a real socket: each request ends
within timeout_secs (plus a margin for a loaded machine) with one typed error, having
read at most max_response_bytes."""

from __future__ import annotations

import time

import pytest

from pvewatch.config.types import DEFAULT_MAX_RESPONSE_BYTES, ClusterConfig
from pvewatch.errors import SourceBadResponse, SourceError, SourceTimeout
from pvewatch.pve.client import PveClient
from pvewatch.secret import Secret
from tests.e2e.harness import wait_for
from tests.pve.hostile import TWO_GB, Hostile, hostile_api
from tests.pve.test_client_sockets import TOKEN, TOKEN_SECRET

TIMEOUT_SECS = 2.0
MARGIN_SECS = 10.0  # a loaded 2-core machine; the point is "ends", not "ends fast"


def _cluster(hostile: Hostile, **fields: float) -> ClusterConfig:
    return ClusterConfig(
        name="hostile",
        endpoints=(hostile.url,),
        token=Secret(TOKEN),
        timeout_secs=TIMEOUT_SECS,
        **fields,  # type: ignore[arg-type]
    )


async def _fails(hostile: Hostile, error: type[SourceError], **fields: float) -> SourceError:
    started = time.monotonic()
    async with PveClient(_cluster(hostile, **fields), min_interval_secs=0) as pve:
        with pytest.raises(error) as caught:
            await pve.resources()
    assert time.monotonic() - started < TIMEOUT_SECS + MARGIN_SECS
    wait_for(lambda: hostile.served, what="the server to see the client leave")
    assert TOKEN_SECRET not in str(caught.value)
    return caught.value


async def test_a_2_gb_stream_ends_at_max_response_bytes() -> None:
    limit = 4 * 1024**2
    with hostile_api("flood") as hostile:
        error = await _fails(hostile, SourceBadResponse, max_response_bytes=limit)
    assert error.kind == "bad_response"
    assert f"over max_response_bytes ({limit})" in str(error)
    (served,) = hostile.served
    assert served.bytes_sent < TWO_GB // 16  # the client hung up long before the end


async def test_a_gzip_bomb_ends_at_max_response_bytes() -> None:
    limit = 4 * 1024**2
    with hostile_api("bomb") as hostile:
        error = await _fails(hostile, SourceBadResponse, max_response_bytes=limit)
    assert error.kind == "bad_response"
    assert f"over max_response_bytes ({limit}): more than {limit} bytes came" in str(error)


async def test_an_announced_2_gb_answer_is_refused_before_its_body() -> None:
    with hostile_api("announce") as hostile:
        error = await _fails(hostile, SourceBadResponse)
    assert f"over max_response_bytes ({DEFAULT_MAX_RESPONSE_BYTES})" in str(error)
    assert f"it announces {TWO_GB} bytes" in str(error)
    (served,) = hostile.served
    assert served.bytes_sent < DEFAULT_MAX_RESPONSE_BYTES


async def test_an_answer_of_a_byte_a_second_ends_after_timeout_secs() -> None:
    with hostile_api("trickle") as hostile:
        error = await _fails(hostile, SourceTimeout)
    assert error.kind == "timeout"
    assert f"timed out after {TIMEOUT_SECS:g} s" in str(error)
    (served,) = hostile.served
    assert TIMEOUT_SECS * 0.9 <= served.seconds < TIMEOUT_SECS + MARGIN_SECS
