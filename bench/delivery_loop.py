"""The delivery loop alone, for before/after comparisons and profiles: a `Deliverer` of
one `WebhookSink` (native format, Standard Webhooks signed) over a `SqliteStore` file,
sending a burst to a `bench.receiver` process; rate and CPU per delivery.

    python -m bench.delivery_loop [--events 2000] [--profile] [--client httpx]
    python -m bench.delivery_loop --client aiohttp  # or httpx-client, httpx-httpcore, ...

`--client` swaps only the HTTP exchange of the sink (`WebhookSink._request`): the same
body and headers (signature included), the status read and the body read up to 64 KiB
either way. `httpx`: the sink as it ships (an httpx request handed to our aiohttp
transport, `pvewatch.net.aio_transport`). `httpx-client`: the same transport under
httpx's client, as the sink sent before. `httpx-httpcore`: httpx's client with its own
transport (httpcore, h11, anyio), as the sink sent before that. `aiohttp`: an
`aiohttp.ClientSession` keeping its connections alive. `httpx-aiohttp`: the sink given
httpx-aiohttp's transport (aiohttp underneath httpx's models). `raw`: a minimal
HTTP/1.1 keep-alive client over asyncio streams, the lower bound of HTTP in Python.
`none`: no request at all (200 at once), what the store, formatting and signing cost
alone; the receiver then sits idle. The receiver's own CPU per delivery is shown too,
and how many arrivals it verified.

Run it from another checkout's root with this file's path (`cd /tmp/main && python
/path/to/bench/delivery_loop.py`) to measure that checkout's pvewatch: the current
directory comes first on sys.path. Alternate the two for a fair comparison on a busy
machine. `--profile`: the store calls run inline (not in threads) under cProfile, and
the top functions by own time are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, os.getcwd())

from bench.common import Process, cpu_secs, proc_cpu_secs, receiver
from bench.probe import burst_events
from pvewatch.config.types import TlsConfig
from pvewatch.deliver.deliverer import Deliverer
from pvewatch.deliver.policy import RetryPolicy
from pvewatch.deliver.settings import Settings
from pvewatch.lifecycle.runtime import utcnow
from pvewatch.secret import Secret
from pvewatch.sinks.formats.base import FormatOptions
from pvewatch.sinks.formats.table import build_formatter
from pvewatch.sinks.webhook import MAX_ANSWER_BYTES, WebhookSink, _read_at_most, http_client
from pvewatch.store.sqlite import SqliteStore
from tests.e2e.receiver import SECRET

Answer = tuple[int, bytes, str | None]  # what `WebhookSink._request` returns


class AiohttpSink(WebhookSink):
    """The sink with its request sent by aiohttp (plain http only, no redirects)."""

    _session: Any = None

    async def _request(self, headers: dict[str, str], body: bytes) -> Answer:
        import aiohttp

        if self._session is None:
            connector = aiohttp.TCPConnector(limit=100, keepalive_timeout=60)
            self._session = aiohttp.ClientSession(connector=connector)
        async with asyncio.timeout(self._timeout):
            async with self._session.request(
                self._method, self._url.reveal(), data=body, headers=headers, allow_redirects=False
            ) as response:
                chunks, size = [], 0
                while size < MAX_ANSWER_BYTES and (chunk := await response.content.read(65536)):
                    chunks.append(chunk)
                    size += len(chunk)
                answer = b"".join(chunks)[:MAX_ANSWER_BYTES]
                return response.status, answer, response.headers.get("retry-after")

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
        await super().aclose()


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class RawSink(WebhookSink):
    """The sink with its request written by hand on pooled HTTP/1.1 keep-alive
    connections: plain http, answers with a content-length only (as bench.receiver's)."""

    _idle: list[Conn] | None = None

    async def _request(self, headers: dict[str, str], body: bytes) -> Answer:
        if self._idle is None:
            self._idle = []
        parts = urlsplit(self._url.reveal())
        # The headers httpx adds on its own, as it writes them: the same bytes on the wire.
        sent = {
            "Host": parts.netloc,
            "Accept": "*/*",
            "Accept-Encoding": "gzip, deflate",
            "Connection": "keep-alive",
            **headers,
            "Content-Length": str(len(body)),
        }
        head = f"{self._method} {parts.path or '/'} HTTP/1.1\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in sent.items()
        )
        async with asyncio.timeout(self._timeout):
            if self._idle:
                reader, writer = self._idle.pop()
            else:
                reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
            writer.write(head.encode("latin-1") + b"\r\n" + body)
            lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            answer_headers = dict(
                (name.strip().lower(), value.strip())
                for name, _, value in (line.partition(":") for line in lines[1:] if line)
            )
            answer = await reader.readexactly(int(answer_headers.get("content-length", "0")))
        if answer_headers.get("connection", "").lower() == "close":
            writer.close()
        else:
            self._idle.append((reader, writer))
        return status, answer[:MAX_ANSWER_BYTES], answer_headers.get("retry-after")

    async def aclose(self) -> None:
        for _, writer in self._idle or []:
            writer.close()
        await super().aclose()


class HttpxAiohttpSink(WebhookSink):
    """The sink as it is (httpx), its transport httpx-aiohttp's (aiohttp underneath)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from httpx_aiohttp import AiohttpTransport

        super().__init__(*args, transport=AiohttpTransport(), **kwargs)


class ClientSink(WebhookSink):
    """The sink sending through httpx's client (request building, cookie jar) over the
    given transport, ours by default: how it sent before it handed requests to the
    transport itself."""

    _client: httpx.AsyncClient | None = None

    async def _request(self, headers: dict[str, str], body: bytes) -> Answer:
        if self._client is None:
            self._client = http_client("bench", TlsConfig(), self._timeout, self._transport)
        async with asyncio.timeout(self._timeout):
            async with self._client.stream(
                self._method, self._target_url(), content=body, headers=headers
            ) as response:
                answer = await _read_at_most(response, MAX_ANSWER_BYTES)
                return response.status_code, answer, response.headers.get("retry-after")

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        await super().aclose()


class HttpcoreSink(ClientSink):
    """The sink with httpx's client and its own transport (httpcore, h11, anyio): how it
    sent before its requests went through aiohttp (`pvewatch.net.aio_transport`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, transport=httpx.AsyncHTTPTransport(), **kwargs)


class NoHttpSink(WebhookSink):
    """The sink without HTTP: every message is answered 200 at once."""

    async def _request(self, headers: dict[str, str], body: bytes) -> Answer:
        return 200, b"", None


SINKS: dict[str, type[WebhookSink]] = {
    "httpx": WebhookSink,
    "httpx-client": ClientSink,
    "httpx-httpcore": HttpcoreSink,
    "aiohttp": AiohttpSink,
    "raw": RawSink,
    "httpx-aiohttp": HttpxAiohttpSink,
    "none": NoHttpSink,
}


async def run(receiving: Process, url: str, events: int, profile: bool, client: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "state.db")
        formatter = build_formatter("fast", FormatOptions())
        secrets = [Secret(SECRET)]
        sink = SINKS[client]("fast", url=Secret(url), formatter=formatter, secrets=secrets)
        store.record_events(burst_events(events, utcnow()), lambda event: ["fast"])
        deliverer = Deliverer(
            store,
            sink,
            policy=RetryPolicy(),
            clock=utcnow,
            rng=random.Random(1),
            logger=logging.getLogger("bench"),
            settings=Settings(concurrency=4),
        )
        profiler: Any = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        cpu, started = cpu_secs(), time.perf_counter()
        receiver_cpu = proc_cpu_secs(receiving.pid)
        await deliverer.drain(600)
        elapsed, used = time.perf_counter() - started, cpu_secs() - cpu
        receiver_used = proc_cpu_secs(receiving.pid) - receiver_cpu
        if profiler is not None:
            import pstats

            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        print(
            f"{client}: {events} deliveries in {elapsed:.2f} s: {events / elapsed:.0f}/s, "
            f"{used * 1000 / events:.2f} ms CPU each, the receiver's "
            f"{receiver_used * 1000 / events:.2f} ms (load {os.getloadavg()[0]:.2f})"
        )
        await sink.aclose()
        store.close()
    if client != "none":  # what arrived was signed right, whichever client sent it
        arrived = receiving.wait_for(
            lambda lines: lines if len(lines) >= events else None, timeout=30, what="arrivals"
        )
        verified = sum(1 for line in arrived if line["verified"])
        print(f"receiver: {len(arrived)} arrived, {verified} verified")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--client", choices=list(SINKS), default="httpx")
    args = parser.parse_args()
    if args.profile:

        async def inline(func: Any, /, *a: Any, **k: Any) -> Any:
            return func(*a, **k)

        asyncio.to_thread = inline  # type: ignore[assignment]  # a profile of one thread
    with receiver() as (receiving, url):
        asyncio.run(run(receiving, url, args.events, args.profile, args.client))


if __name__ == "__main__":
    main()
