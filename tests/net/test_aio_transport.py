"""The sinks' requests go out through aiohttp (`net.aio_transport`): on a real socket, the
request is the one httpx built, byte for byte where it matters, connections are kept
alive, and every way a receiver can fail reads as it did with httpx's own stack."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pvewatch import __version__
from pvewatch.config.types import TlsConfig
from pvewatch.errors import SinkError
from pvewatch.secret import Secret
from pvewatch.simulator.certs import SelfSigned
from pvewatch.sinks.formats.base import FormatOptions
from pvewatch.sinks.formats.table import build_formatter
from pvewatch.sinks.webhook import WebhookSink
from tests.e2e.receiver import SECRET, verify_standard_webhook
from tests.sinks.contract import guest_stopped

Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@dataclass
class Seen:
    connections: int = 0
    requests: list[tuple[bytes, dict[str, str], bytes]] = field(default_factory=list)


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    line, *lines = head[:-4].split(b"\r\n")
    names = [h.split(b":", 1)[0].decode().lower() for h in lines]
    assert len(names) == len(set(names)), f"a header sent twice: {names}"
    headers = {n: h.split(b":", 1)[1].strip().decode() for n, h in zip(names, lines, strict=True)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return line, headers, body


@asynccontextmanager
async def server(answer: Answer, tls: Path | None = None) -> AsyncIterator[tuple[int, Seen]]:
    """A receiver on a real socket; `tls`: a folder with its cert.pem and key.pem."""
    seen = Seen()
    context = None
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls / "cert.pem", tls / "key.pem")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.connections += 1
        try:
            await answer(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass  # the sink gave up or the handshake failed: the test says what it expects
        finally:
            writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    try:
        yield srv.sockets[0].getsockname()[1], seen
    finally:
        srv.close()


def sink(url: str, *, timeout_secs: float = 5.0, tls: TlsConfig | None = None) -> WebhookSink:
    return WebhookSink(
        "hook",
        url=Secret(url),
        formatter=build_formatter("hook", FormatOptions("native")),
        timeout_secs=timeout_secs,
        tls=tls,
        secrets=[Secret(SECRET)],
    )


class Answering:
    """Answers every request on a connection with the next of `replies` (the last one
    again once they run out), and keeps what came."""

    def __init__(self, *replies: bytes) -> None:
        self.replies = replies
        self.requests: list[tuple[bytes, dict[str, str], bytes]] = []

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            self.requests.append(await read_request(reader))
            writer.write(self.replies[min(len(self.requests), len(self.replies)) - 1])
            await writer.drain()


async def test_the_request_on_the_wire_is_the_one_httpx_built() -> None:
    answer = Answering(OK)
    async with server(answer) as (port, _):
        hook = sink(f"http://127.0.0.1:{port}/hooks/T0K%2FEN?room=a%20b")
        await hook.send([guest_stopped()])
        await hook.aclose()
    ((line, headers, body),) = answer.requests
    assert line == b"POST /hooks/T0K%2FEN?room=a%20b HTTP/1.1"
    assert set(headers) == {
        "host",
        "accept",
        "accept-encoding",
        "connection",
        "user-agent",
        "content-type",
        "content-length",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
    assert headers["host"] == f"127.0.0.1:{port}"
    assert headers["user-agent"] == f"pvewatch/{__version__}"
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    assert verify_standard_webhook(SECRET, headers, body, float(headers["webhook-timestamp"]))


async def test_messages_to_one_receiver_share_one_connection() -> None:
    answer = Answering(OK)
    async with server(answer) as (port, seen):
        hook = sink(f"http://127.0.0.1:{port}/hook")
        for _ in range(5):
            await hook.send([guest_stopped()])
        await hook.aclose()
    assert len(answer.requests) == 5
    assert seen.connections == 1


async def test_a_connection_left_mid_answer_is_not_reused() -> None:
    answer = Answering(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nok", OK)
    async with server(answer) as (port, seen):
        hook = sink(f"http://127.0.0.1:{port}/hook", timeout_secs=0.5)
        with pytest.raises(SinkError) as caught:
            await hook.send([guest_stopped()])
        await hook.send([guest_stopped()])
        await hook.aclose()
    assert "no complete answer within 0.5s" in str(caught.value)
    assert len(answer.requests) == 2
    assert seen.connections == 2


async def _close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)


async def _not_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"SSH-2.0-OpenSSH_9.2\r\n")
    await writer.drain()


async def _half_a_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
    await writer.drain()


async def _never(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    await reader.read()  # until the sink gives up and closes


async def _reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    linger_at_once = b"\1\0\0\0\0\0\0\0"  # struct linger {1, 0}: close sends a RST
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger_at_once)


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        (_close_at_once, "the connection broke or the answer was not HTTP"),
        (_not_http, "the connection broke or the answer was not HTTP"),
        (_half_a_body, "the connection broke or the answer was not HTTP"),
        (_never, "no complete answer within 0.5s"),
        (_reset, "cannot connect: Connection reset by peer"),
    ],
)
async def test_a_receiver_that_fails_reads_as_it_did(behaviour: Answer, reason: str) -> None:
    async with server(behaviour) as (port, _):
        hook = sink(f"http://127.0.0.1:{port}/hook", timeout_secs=0.5)
        with pytest.raises(SinkError) as caught:
            await hook.send([guest_stopped()])
        await hook.aclose()
    assert caught.value.retryable
    assert str(caught.value) == f"http://127.0.0.1:{port}: {reason}"


async def test_a_refused_connection_says_so() -> None:
    async with server(_never) as (port, _):
        pass  # closed: the port refuses now
    hook = sink(f"http://127.0.0.1:{port}/T0KEN")
    with pytest.raises(SinkError) as caught:
        await hook.send([guest_stopped()])
    await hook.aclose()
    assert str(caught.value) == f"http://127.0.0.1:{port}: cannot connect: Connection refused"


async def test_tls_is_verified_with_the_sinks_ca_file(cert: SelfSigned, tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_bytes(cert.cert_pem)
    (tmp_path / "key.pem").write_bytes(cert.key_pem)
    answer = Answering(OK)
    async with server(answer, tls=tmp_path) as (port, _):
        untrusted = sink(f"https://127.0.0.1:{port}/T0KEN")
        with pytest.raises(SinkError) as caught:
            await untrusted.send([guest_stopped()])
        await untrusted.aclose()
        trusted = sink(
            f"https://127.0.0.1:{port}/T0KEN", tls=TlsConfig(ca_file=tmp_path / "cert.pem")
        )
        await trusted.send([guest_stopped()])
        await trusted.aclose()
    assert str(caught.value) == f"https://127.0.0.1:{port}: TLS: self-signed certificate"
    assert "T0KEN" not in str(caught.value)
    assert len(answer.requests) == 1
