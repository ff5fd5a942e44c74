"""`pvewatch health`: GET /healthz of the running daemon's own listener, the way the
Docker image's HEALTHCHECK needs it — from the config the daemon reads, so that a listener
with TLS, basic auth or another port is probed as it is.

- Where: `http.listen`, with a wildcard address (0.0.0.0, ::) replaced by loopback.
- TLS: the probe accepts exactly the certificate of `http.tls_server_config.cert_file`
  (the listener it probes is ours; the name in the certificate need not be "127.0.0.1"),
  checked before a byte is sent, and shows `http.health_check`'s client certificate when
  one is set.
- Basic auth: `http.health_check.user` and its password from `password_file`. The
  password goes into the Authorization header and nowhere else: no message says it.

The answer is one line: `ok: …` (exit 0) or `unhealthy: …` (exit 1). stdlib http.client
only: this runs every 30 s, and a quick start matters more than a richer client.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import ssl
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from http.client import HTTPConnection, HTTPException, HTTPSConnection
from pathlib import Path
from typing import TextIO

from pvewatch.config.service import load_http_config
from pvewatch.config.types import HttpConfig
from pvewatch.errors import ConfigError
from pvewatch.lifecycle import startup

DEFAULT_TIMEOUT_SECS = 5.0
_MAX_BODY_BYTES = 64 * 1024
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}


@dataclass(frozen=True, slots=True)
class Verdict:
    healthy: bool
    reason: str

    def line(self) -> str:
        return f"{'ok' if self.healthy else 'unhealthy'}: {self.reason}"


class _Unhealthy(Exception):
    """A reason to report, raised from deep inside the probe."""


def report_health(
    path: Path, env: Mapping[str, str], out: TextIO, timeout_secs: float = DEFAULT_TIMEOUT_SECS
) -> int:
    """`pvewatch health`: one line on `out`; 0 healthy, 1 not (also for a bad config: a
    Docker HEALTHCHECK must not exit 2)."""
    try:
        http = load_http_config(path, env)
    except ConfigError as e:
        more = f" (and {len(e.problems) - 1} more)" if len(e.problems) > 1 else ""
        first = e.problems[0] if e.problems else "invalid"
        print(f"unhealthy: config {path}: {first}{more}", file=out)
        return 1
    verdict = check_health(http, timeout_secs)
    print(verdict.line(), file=out)
    return 0 if verdict.healthy else 1


def probe_address(http: HttpConfig) -> tuple[str, int]:
    """Where to reach the listener from the same host (or container)."""
    host, port = http.host_port()
    return _WILDCARDS.get(host, host), port


def check_health(http: HttpConfig, timeout_secs: float = DEFAULT_TIMEOUT_SECS) -> Verdict:
    """GET /healthz of the listener `http` describes."""
    if http.listen is None:
        return Verdict(False, "http.listen is off: there is no /healthz to probe")
    host, port = probe_address(http)
    shown = f"[{host}]" if ":" in host else host
    url = f"{'https' if http.tls else 'http'}://{shown}:{port}/healthz"
    try:
        status, body = _get(http, host, port, timeout_secs)
    except _Unhealthy as e:
        return Verdict(False, f"{url}: {e}")
    except TimeoutError:
        return Verdict(False, f"{url}: no answer within {timeout_secs:g} s")
    except ConnectionRefusedError:
        return Verdict(False, f"{url}: connection refused (is pvewatch running?)")
    except ssl.SSLError as e:
        return Verdict(False, f"{url}: TLS failed: {e.reason or e}{_client_cert_hint(http)}")
    except (OSError, HTTPException) as e:
        reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
        # asyncio sends no TLS alert when it refuses a handshake: a probe without the
        # client certificate the listener asks for sees the connection closed.
        return Verdict(False, f"{url}: {reason}{_client_cert_hint(http)}")
    return _judge(http, url, status, body)


def _get(http: HttpConfig, host: str, port: int, timeout_secs: float) -> tuple[int, bytes]:
    headers = {"User-Agent": "pvewatch-health", "Connection": "close"}
    check = http.health_check
    if check.user is not None and check.password is not None:
        pair = f"{check.user}:{check.password.reveal()}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    conn: HTTPConnection
    if http.tls is None:
        conn = HTTPConnection(host, port, timeout=timeout_secs)
    else:
        conn = HTTPSConnection(host, port, timeout=timeout_secs, context=_client_context(http))
    try:
        conn.connect()
        if http.tls is not None:
            _check_pin(conn.sock, http.tls.cert_file)
        conn.request("GET", "/healthz", headers=headers)
        response = conn.getresponse()
        return response.status, response.read(_MAX_BODY_BYTES)
    finally:
        conn.close()


def _client_context(http: HttpConfig) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # Not trust by a CA and a name: the pin below accepts exactly our own certificate.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    check = http.health_check
    if check.cert_file is not None and check.key_file is not None:
        try:
            context.load_cert_chain(check.cert_file, check.key_file)
        except (OSError, ssl.SSLError) as e:
            where = f"http.health_check.cert_file {check.cert_file}"
            raise _Unhealthy(f"cannot load {where}: {getattr(e, 'reason', None) or e}") from None
    return context


def _check_pin(sock: socket.socket, cert_file: Path) -> None:
    if not isinstance(sock, ssl.SSLSocket):
        raise _Unhealthy("not a TLS connection")
    try:
        ours = _first_certificate(cert_file.read_text(encoding="ascii", errors="replace"))
    except (OSError, ValueError) as e:
        reason = getattr(e, "strerror", None) or e
        where = f"http.tls_server_config.cert_file {cert_file}"
        raise _Unhealthy(f"cannot read {where}: {reason}") from None
    if sock.getpeercert(binary_form=True) != ours:
        raise _Unhealthy(
            f"the listener serves a certificate other than {cert_file} "
            "(changed on disk without a reload? send SIGHUP)"
        )


def _first_certificate(pem: str) -> bytes:
    """The DER of the first certificate in a PEM file (the leaf of a chain)."""
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    start = pem.find(begin)
    stop = pem.find(end, start)
    if start < 0 or stop < 0:
        raise ValueError("no PEM certificate in it")
    return ssl.PEM_cert_to_DER_cert(pem[start : stop + len(end)])


def _judge(http: HttpConfig, url: str, status: int, body: bytes) -> Verdict:
    if status == 200:
        return Verdict(True, f"{url} answered 200{_detail(body)}")
    if status == 401:
        user = http.health_check.user
        if user is None:
            return Verdict(
                False,
                f"{url} wants basic auth: set http.health_check.user and password_file",
            )
        return Verdict(False, f"{url} refused http.health_check.user {user!r} (wrong password?)")
    if status == 503:
        return Verdict(False, f"{url} answered 503{_detail(body)}")
    return Verdict(False, f"{url} answered {status}")


def _detail(body: bytes) -> str:
    """The failing checks of a probe's JSON body, else its first check's detail."""
    try:
        checks = json.loads(body)["checks"]
        failing = [c for c in checks if not c["ok"]] or checks[:1]
        return " (" + "; ".join(f"{c['name']}: {c['detail']}" for c in failing) + ")"
    except (ValueError, KeyError, TypeError, IndexError):
        return ""


def _client_cert_hint(http: HttpConfig) -> str:
    tls = http.tls
    if tls is None or tls.client_auth_type == "NoClientCert":
        return ""
    if http.health_check.cert_file is None:
        return " (the listener asks for client certificates: set http.health_check.cert_file)"
    return ""


def health_command(args: argparse.Namespace) -> int:
    """`pvewatch health`."""
    return report_health(startup.config_path(args.config), os.environ, sys.stdout, args.timeout)
