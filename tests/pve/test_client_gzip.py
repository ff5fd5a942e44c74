"""PveClient with gzip and deflate answers (respx): inflated to what the plain answer
gives, bounded by max_response_bytes after inflating (a bomb never makes more than the
limit and a byte), and anything but one whole stream is an "undecodable body"."""

from __future__ import annotations

import gzip
import json
import tracemalloc
import zlib
from collections.abc import AsyncIterator

import httpx
import pytest
import respx

from pvewatch.config.types import ClusterConfig
from pvewatch.errors import SourceBadResponse
from pvewatch.pve.client import PveClient
from pvewatch.secret import Secret
from tests.pve.hostile import BOMB_BYTES, gzip_bomb
from tests.pve.test_client_errors import SECRET_PART, TOKEN, URL

ROWS = [
    {"id": f"qemu/{n}", "type": "qemu", "vmid": n, "node": "pve1", "status": "running"}
    for n in range(100, 400)
]
BODY = json.dumps({"data": ROWS}).encode()
LIMIT = 4 * 1024**2


def _deflate(data: bytes, wbits: int) -> bytes:
    squeeze = zlib.compressobj(6, zlib.DEFLATED, wbits)
    return squeeze.compress(data) + squeeze.flush()


GZIPPED = gzip.compress(BODY)
ENCODED = {
    "gzip": ("gzip", GZIPPED),
    "deflate": ("deflate", _deflate(BODY, zlib.MAX_WBITS)),
    "raw deflate": ("deflate", _deflate(BODY, -zlib.MAX_WBITS)),
    "GZIP, spaced": (" GZIP ", GZIPPED),
}


class Pieces(httpx.AsyncByteStream):
    """A body that comes in pieces of `size` bytes, as off a socket."""

    def __init__(self, data: bytes, size: int) -> None:
        self._data, self._size = data, size

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self._data), self._size):
            yield self._data[start : start + self._size]


def _answer(body: bytes, encoding: str | None, piece: int) -> httpx.Response:
    headers = {"Content-Encoding": encoding} if encoding else {}
    return httpx.Response(200, stream=Pieces(body, piece), headers=headers)


def _client(answer: httpx.Response, limit: int = LIMIT) -> PveClient:
    router = respx.MockRouter(assert_all_called=False)
    router.get(URL).mock(return_value=answer)
    cluster = ClusterConfig(
        name="lab", endpoints=("pve1",), token=Secret(TOKEN), max_response_bytes=limit
    )
    transport = httpx.MockTransport(router.async_handler)
    return PveClient(cluster, transport=transport, min_interval_secs=0)


@pytest.mark.parametrize("piece", [7, 1 << 20], ids=["7-byte pieces", "one piece"])
@pytest.mark.parametrize("name", list(ENCODED))
async def test_an_encoded_answer_gives_what_the_plain_one_gives(name: str, piece: int) -> None:
    encoding, body = ENCODED[name]
    async with _client(_answer(BODY, None, piece)) as pve:
        plain = await pve.resources()
    async with _client(_answer(body, encoding, piece)) as pve:
        assert await pve.resources() == plain == ROWS
    async with _client(_answer(body, encoding, piece)) as pve:
        assert await pve.stable_resources() is not None  # the typed path reads it too


@pytest.mark.parametrize("limit", [len(BODY) - 1, len(BODY)])
async def test_the_limit_counts_inflated_bytes(limit: int) -> None:
    async with _client(_answer(GZIPPED, "gzip", 1 << 20), limit) as pve:
        if limit >= len(BODY):
            assert await pve.resources() == ROWS
            return
        with pytest.raises(SourceBadResponse) as caught:
            await pve.resources()
    assert f"answer over max_response_bytes ({limit}): more than {limit} bytes came" in str(
        caught.value
    )


async def test_a_gzip_bomb_is_refused_and_never_inflated_whole() -> None:
    bomb = gzip_bomb()
    assert len(bomb) < BOMB_BYTES // 500
    tracemalloc.start()
    try:
        async with _client(_answer(bomb, "gzip", len(bomb))) as pve:
            with pytest.raises(SourceBadResponse) as caught:
                await pve.resources()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.kind == "bad_response"
    expected = f"answer over max_response_bytes ({LIMIT}): more than {LIMIT} bytes came"
    assert expected in str(caught.value)
    assert peak < 3 * LIMIT  # httpx's zlib decoder made all 100 MB of one chunk at once


UNDECODABLE = {
    "cut short": ("gzip", GZIPPED[: len(GZIPPED) // 2]),
    "no trailer": ("gzip", GZIPPED[:-8]),
    "trailing junk": ("gzip", GZIPPED + b"junk"),
    "second member": ("gzip", GZIPPED + GZIPPED),
    "corrupt": ("gzip", GZIPPED[:40] + bytes([GZIPPED[40] ^ 0xFF]) + GZIPPED[41:]),
    "bad checksum": ("gzip", GZIPPED[:-8] + bytes(4) + GZIPPED[-4:]),
    "not gzip": ("gzip", b"not gzip at all, only text"),
    "deflate cut short": ("deflate", ENCODED["deflate"][1][:-3]),
    "deflate junk": ("deflate", ENCODED["raw deflate"][1] + b"junk"),
}


@pytest.mark.parametrize("piece", [7, 1 << 20], ids=["7-byte pieces", "one piece"])
@pytest.mark.parametrize("name", list(UNDECODABLE))
async def test_anything_but_one_whole_stream_is_an_undecodable_body(name: str, piece: int) -> None:
    encoding, body = UNDECODABLE[name]
    async with _client(_answer(body, encoding, piece)) as pve:
        with pytest.raises(SourceBadResponse) as caught:
            await pve.resources()
    message = str(caught.value)
    assert message.startswith(
        "https://pve1:8006: GET /api2/json/cluster/resources: undecodable body: "
    )
    assert caught.value.kind == "bad_response"
    assert SECRET_PART not in message


async def test_an_empty_gzip_body_is_empty_as_before() -> None:
    async with _client(_answer(b"", "gzip", 1)) as pve:
        with pytest.raises(SourceBadResponse, match="body is not JSON"):
            await pve.resources()
