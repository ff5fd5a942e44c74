"""The mqtt sink's connection to its broker, the one place aiomqtt's calls and errors are
handled (`pvewatch.sinks.mqtt` publishes over it): connecting with TLS and a login,
closing, telling a broken connection, and why a connection or a publish failed, said
without secrets (aiomqtt's texts hold return codes and socket errors only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from pvewatch.errors import SinkError
from pvewatch.net.tls import build_ssl_context
from pvewatch.sinks.mqtt_options import MqttOptions

# paho's own chatter (DEBUG) and aiomqtt's; its warning about many publishes awaited at
# once does not apply to a state sync (`mqtt`), which awaits 1,000 by design.
_CLIENT_LOG = logging.getLogger("pvewatch.mqtt.client")
_IN_FLIGHT_WARNING = 2000
_IN_FLIGHT = 100  # QoS 1 publishes on the wire before their PUBACK (paho's default: 20)


async def connect(options: MqttOptions, prefix: str) -> aiomqtt.Client:
    """A connected, logged-in client (CONNACK accepted); SinkError saying why not."""
    try:
        context = build_ssl_context(options.tls) if options.tls_on else None
    except (OSError, ssl.SSLError) as e:
        raise SinkError(
            f"{options.where}: cannot load tls.ca_file: {type(e).__name__}", retryable=True
        ) from None
    client = aiomqtt.Client(
        options.host,
        options.port,
        username=options.username,
        password=options.password.reveal() if options.password is not None else None,
        identifier=f"{prefix}-{secrets.token_hex(4)}",
        tls_context=context,
        timeout=options.timeout_secs,
        logger=_CLIENT_LOG,
        max_inflight_messages=_IN_FLIGHT,
    )
    client.pending_calls_threshold = _IN_FLIGHT_WARNING
    try:
        async with asyncio.timeout(options.timeout_secs + 1):
            await client.__aenter__()
    except (aiomqtt.MqttError, TimeoutError) as e:
        # Not connected: nothing to disconnect (aiomqtt would warn that it cannot); a
        # broker that refused the login closes the socket itself.
        why = reason(e, options, "connect")
        raise SinkError(f"{options.where}: {why}", retryable=True) from None
    return client


def broken(client: aiomqtt.Client) -> bool:
    """The connection broke since it was made (aiomqtt's own record of it)."""
    broke = getattr(client, "_disconnected", None)
    return isinstance(broke, asyncio.Future) and broke.done()


async def disconnect(client: aiomqtt.Client) -> None:
    """Close the connection; one that already broke has nothing more to report. aiomqtt
    keeps why it broke in a future that only its message iterator reads (this sink
    subscribes to nothing): read here, or asyncio logs "Future exception was never
    retrieved" when the client is collected."""
    with contextlib.suppress(Exception):
        await client.__aexit__(None, None, None)
    broke = getattr(client, "_disconnected", None)
    if isinstance(broke, asyncio.Future) and broke.done() and not broke.cancelled():
        broke.exception()


_LOGIN_REFUSED = frozenset({4, 5, 134, 135})  # bad user name or password, not authorized


def reason(e: BaseException, options: MqttOptions, doing: str) -> str:
    """Why the broker could not be used while `doing` (connect, publish), for the log and
    `deliveries`; never a secret (aiomqtt's texts hold return codes and socket errors)."""
    if isinstance(e, TimeoutError):
        return f"no answer within {options.timeout_secs:g}s"
    if isinstance(e, MqttConnectError):
        code = getattr(e.rc, "value", e.rc)
        if code in _LOGIN_REFUSED:
            return f"the broker refused the login ({e}); check username and password_file"
        return f"the broker refused the connection ({e})"
    text = str(e)
    if "Operation timed out" in text:
        return f"no answer (CONNACK or PUBACK) within {options.timeout_secs:g}s"
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return f"TLS: the broker's certificate is not trusted ({text}); check tls.ca_file"
    if "SSL" in text:
        return f"TLS handshake failed ({text})"
    if doing == "connect":
        return f"cannot connect ({text or type(e).__name__})"
    return f"the connection failed while publishing ({text or type(e).__name__})"
