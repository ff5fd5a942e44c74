"""The email sink (`type: email`): each event, or each burst, as one mail through an SMTP
server (aiosmtplib), on a connection of its own: STARTTLS, implicit TLS or (only when
written) none, certificates verified, AUTH when a username is configured.

What happens to a mail (docs/sinks.md, "Email"):
- accepted by the server for every recipient: delivered;
- a 4xx reply (greylisting, a full queue, a temporary AUTH failure), no reply at all
  (server down, timeout, the connection broke) or a TLS failure: retried by delivery;
- a 5xx reply (recipient unknown, message rejected, AUTH refused): failed for good; the
  row goes dead with the server's reply, for `pvewatch deliveries` and `replay`.
- some recipients refused: the refusals decide (a 4xx among them retries the whole
  mail; the others may see it twice, with the same Message-ID).

The password is never logged nor put in an error; the server is named by host and port.
`EMAIL` is the row of the table of sink types: options (`mail_options`), builder,
`check-config --connect` (connect, TLS, AUTH, QUIT: nothing sent) and `test-sink`.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence

import aiosmtplib

from pvewatch.config.types import Config, TlsConfig
from pvewatch.errors import SinkError
from pvewatch.model import Event
from pvewatch.net.probe import Check
from pvewatch.net.tls import build_ssl_context
from pvewatch.sinks.base import SinkContext, SinkType, Tried
from pvewatch.sinks.mail_message import Mail, build_mail, reply_error
from pvewatch.sinks.mail_options import MAIL_KEYS, MailOptions, mail_options


class MailSink:
    """Sends each event, or burst, as one mail."""

    groups = True  # a node outage is one mail, not twenty

    def __init__(self, name: str, options: MailOptions) -> None:
        self.name = name
        self.options = options
        scheme = "smtps" if options.tls == "tls" else "smtp"
        self.where = f"{scheme}://{options.host}:{options.port}"
        self._closed = False

    @classmethod
    def build(cls, name: str, options: MailOptions, context: SinkContext) -> MailSink:
        """The sink of `options` (`mail_options` checked them); opens nothing."""
        return cls(name, options)

    async def send(self, events: Sequence[Event]) -> None:
        await self.deliver(events)

    async def deliver(self, events: Sequence[Event]) -> tuple[Mail, str]:
        """Send the mail of `events`; the mail and the server's final reply. SinkError
        when it was not accepted for every recipient."""
        if self._closed:
            raise SinkError(f"email sink {self.name!r} is closed", retryable=False)
        mail = build_mail(self.options, events)
        try:
            async with self.connection() as smtp:
                refused, reply = await smtp.send_message(
                    mail.message, sender=self.options.sender, recipients=list(mail.recipients)
                )
        except SinkError:
            raise
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as e:
            raise self.failure(e) from None
        if refused:
            raise _refusals(
                {str(k): (v.code, v.message) for k, v in refused.items()},
                self.where,
                len(mail.recipients),
            )
        return mail, reply

    def connection(self) -> aiosmtplib.SMTP:
        """An SMTP client for the server, connected (TLS, AUTH) by `async with`."""
        o = self.options
        context = None
        if o.tls != "none":
            try:
                context = build_ssl_context(TlsConfig(ca_file=o.ca_file))
            except (OSError, ssl.SSLError) as e:
                raise SinkError(
                    f"email sink {self.name!r}: cannot load ca_file: {type(e).__name__}",
                    retryable=True,
                ) from None
        return aiosmtplib.SMTP(
            hostname=o.host,
            port=o.port,
            username=o.username,
            password=o.password.reveal() if o.password is not None else None,
            timeout=o.timeout_secs,
            use_tls=o.tls == "tls",
            start_tls=o.tls == "starttls",
            validate_certs=o.tls != "none",
            tls_context=context,
        )

    def failure(self, e: BaseException) -> SinkError:
        """The SinkError of what aiosmtplib or the network raised."""
        if isinstance(e, aiosmtplib.SMTPRecipientsRefused):
            return _refusals(
                {r.recipient: (r.code, r.message) for r in e.recipients},
                self.where,
                len(self.options.to),
            )
        if isinstance(e, aiosmtplib.SMTPResponseException):
            return reply_error(e.code, e.message, self.where, _step(e))
        return SinkError(f"{self.where}: {_reason(e)}", retryable=True)

    async def aclose(self) -> None:
        self._closed = True


def _step(e: aiosmtplib.SMTPResponseException) -> str:
    if isinstance(e, aiosmtplib.SMTPAuthenticationError):
        return "AUTH refused"
    if isinstance(e, aiosmtplib.SMTPSenderRefused):
        return "sender refused"
    if isinstance(e, aiosmtplib.SMTPDataError):
        return "message refused"
    if isinstance(e, aiosmtplib.SMTPConnectResponseError):
        return "greeting"
    return "refused"


def _refusals(refused: dict[str, tuple[int, str]], where: str, total: int) -> SinkError:
    """Some or all recipients refused: retried when one of the refusals is temporary."""
    parts = [reply_error(code, msg, "", who) for who, (code, msg) in sorted(refused.items())]
    temporary = any(p.retryable for p in parts)
    said = "; ".join(str(p).removeprefix(": ") for p in parts)
    count = f"{len(refused)} of {total} recipient(s) refused"
    return SinkError(f"{where}: {count}: {said}", retryable=temporary)


def _reason(e: BaseException) -> str:
    """Why no SMTP reply came, without anything secret."""
    cause: BaseException | None = e
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS: {cause.verify_message or 'certificate verify failed'}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS: {cause.reason or type(cause).__name__}"
        if isinstance(cause, aiosmtplib.SMTPNotSupported):
            return f"not supported by the server: {cause.message}"
        if isinstance(cause, aiosmtplib.SMTPTimeoutError):
            return "timed out"
        if isinstance(cause, ConnectionRefusedError):
            return "cannot connect: connection refused"
        if isinstance(cause, OSError) and cause.strerror:
            return f"cannot connect: {cause.strerror}"
        cause = cause.__cause__ or cause.__context__
    if isinstance(e, aiosmtplib.SMTPServerDisconnected):
        return "the server closed the connection"
    if isinstance(e, aiosmtplib.SMTPException):
        return f"{type(e).__name__}: {e.message}"
    return type(e).__name__


async def check_mail(options: MailOptions, config: Config) -> list[Check]:
    """`check-config --connect`: connect, TLS (STARTTLS or implicit), AUTH when a
    username is set, then QUIT: no mail is sent."""
    sink = MailSink("check", options)
    try:
        async with sink.connection():
            pass
    except SinkError as e:
        return [Check("fail", "connect", str(e))]
    except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as e:
        failed = sink.failure(e)
        what = "auth" if isinstance(e, aiosmtplib.SMTPAuthenticationError) else "connect"
        return [Check("fail", what, str(failed))]
    how = {"starttls": "STARTTLS", "tls": "implicit TLS", "none": "no TLS"}[options.tls]
    checks = [Check("ok", "connect", f"{sink.where} reachable ({how})")]
    if options.username:
        checks.append(Check("ok", "auth", f"logged in as {options.username} (no mail sent)"))
    else:
        checks.append(Check("ok", "auth", "no username: sends without AUTH (no mail sent)"))
    return checks


async def try_mail(sink: MailSink, event: Event) -> Tried:
    """`test-sink`: the sample as a real mail; what the server answered."""
    try:
        mail, reply = await sink.deliver([event])
    except SinkError as e:
        retry = " (would be retried)" if e.retryable else " (would not be retried)"
        return Tried(False, (f"sink {sink.name}: NOT delivered: {e}{retry}",))
    to = ", ".join(mail.recipients)
    return Tried(
        True,
        (
            f"sink {sink.name}: {sink.where} accepted the mail for {to}",
            f"  Message-ID: {mail.message_id}",
            f"  Subject: {mail.message['Subject']}",
            f"  answer: {' '.join(reply.split())[:300] or '(empty)'}",
        ),
    )


EMAIL = SinkType(
    options=MailOptions,
    keys=MAIL_KEYS,
    parse=mail_options,
    build=MailSink.build,
    check=check_mail,
    test=try_mail,
    concurrency=2,
)
