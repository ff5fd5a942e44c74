"""A real SMTP server on loopback for the email sink's tests: aiosmtpd (in a thread of its
own), STARTTLS required before AUTH, AUTH required before MAIL, or implicit TLS; every
mail it accepts is kept parsed. Recipients can be made to answer a given reply."""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.faults.certs import Authority, issue, make_authority

USER, PASSWORD = "pvewatch", "s3cret-smtp-pass"


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class Handler:
    mails: list[Received] = field(default_factory=list)
    replies: dict[str, str] = field(default_factory=dict)  # recipient → RCPT reply
    data_reply: str | None = None  # answer DATA with this instead of accepting
    logins: int = 0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        reply = self.replies.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply is not None:
            return self.data_reply
        content = envelope.original_content or b""
        message = BytesParser(policy=policy.default).parsebytes(content)
        assert isinstance(message, EmailMessage)
        self.mails.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), message))
        return "250 2.0.0 queued as 4711"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        self.logins += ok
        return AuthResult(success=ok, handled=False)  # aiosmtpd then answers 235 / 535


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: Handler
    ca_file: Path

    @property
    def mails(self) -> list[Received]:
        return self.handler.mails


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _server_context(ca: Authority, tmp: Path) -> ssl.SSLContext:
    issued = issue(ca)
    (tmp / "smtp-cert.pem").write_bytes(issued.cert_pem)
    (tmp / "smtp-key.pem").write_bytes(issued.key_pem)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp / "smtp-cert.pem", tmp / "smtp-key.pem")
    return context


@contextlib.contextmanager
def smtp_server(
    tmp: Path, *, implicit_tls: bool = False, plain: bool = False
) -> Iterator[SmtpServer]:
    """STARTTLS + AUTH (required) on a free port, or implicit TLS + AUTH, or (`plain`)
    neither TLS nor AUTH: a server that offers no STARTTLS."""
    ca = make_authority()
    (tmp / "smtp-ca.pem").write_bytes(ca.cert_pem)
    context = _server_context(ca, tmp)
    handler = Handler()
    port = free_port()
    tls: dict[str, Any] = (
        {"ssl_context": context}
        if implicit_tls
        else {"tls_context": context, "require_starttls": True}
    )
    auth: dict[str, Any] = {
        "authenticator": handler.authenticate,
        "auth_required": True,
        "auth_require_tls": not implicit_tls,  # aiosmtpd only knows of STARTTLS's TLS
    }
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, **({} if plain else tls | auth)
    )
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler, tmp / "smtp-ca.pem")
    finally:
        controller.stop()
