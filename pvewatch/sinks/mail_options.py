"""The options of `type: email` sinks, read once here (`pvewatch.sinks.mail` builds the
sink from them):

    sinks:
      mail:
        type: email
        host: smtp.example.net
        port: 587                       # default: 587 starttls, 465 tls, 25 none
        tls: starttls                   # starttls (default) | tls (implicit) | none
        ca_file: /etc/ssl/smtp-ca.pem   # else the system's CAs; certificates are verified
        username: pvewatch              # with password or password_file, or neither
        password_file: smtp.pass
        from: "pvewatch@example.net"
        to: ["ops@example.net"]
        subject: "[pvewatch] {severity}: {summary}"   # also {cluster}, {count}
        timeout_secs: 30

`tls: none` is only what is written: a missing `tls` is STARTTLS, and the server must
offer it. The password is a `Secret`: no summary, log line or error shows it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import parseaddr
from pathlib import Path

from pvewatch.config.clusters import read_ca_file
from pvewatch.config.reading import (
    Ctx,
    get_enum,
    get_integer,
    get_number,
    get_secret,
    get_str,
    join,
)
from pvewatch.config.types import SinkOptions
from pvewatch.secret import Secret

TLS_MODES = ("starttls", "tls", "none")
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
DEFAULT_SUBJECT = "[pvewatch] {severity}: {summary}"
SUBJECT_FIELDS = ("severity", "summary", "cluster", "count")
_FIELD = re.compile(r"\{([^{}]*)\}")
MAIL_KEYS = frozenset(
    {"host", "port", "tls", "ca_file", "username", "password", "password_file"}
    | {"from", "to", "subject", "timeout_secs"}
)


@dataclass(frozen=True, slots=True)
class MailOptions(SinkOptions):
    host: str
    sender: str  # `from`
    to: tuple[str, ...]
    port: int = 587
    tls: str = "starttls"
    ca_file: Path | None = None
    username: str | None = None
    password: Secret | None = None
    subject: str = DEFAULT_SUBJECT
    timeout_secs: float = 30.0

    def summary(self) -> dict[str, object]:
        """As written in YAML: `sender` is the key `from`."""
        mine = SinkOptions.summary(self)
        return {("from" if k == "sender" else k): v for k, v in mine.items()}


def mail_options(ctx: Ctx, path: str, m: Mapping[str, object]) -> MailOptions:
    host = get_str(ctx, join(path, "host"), m.get("host"))
    if not host:
        ctx.add(join(path, "host"), "required: the SMTP server's name or address")
    tls = get_enum(ctx, join(path, "tls"), m.get("tls"), TLS_MODES)
    port = get_integer(ctx, join(path, "port"), m.get("port"), DEFAULT_PORTS[tls], 1, 65535)
    ca_file = read_ca_file(ctx, join(path, "ca_file"), m.get("ca_file"))
    if ca_file is not None and tls == "none":
        ctx.add(join(path, "ca_file"), "tls: none uses no certificates")
    username, password = _login(ctx, path, m, tls)
    sender = _address(ctx, join(path, "from"), m.get("from"))
    return MailOptions(
        host=host or "",
        sender=sender or "",
        to=_recipients(ctx, join(path, "to"), m.get("to")),
        port=port,
        tls=tls,
        ca_file=ca_file,
        username=username,
        password=password,
        subject=_subject(ctx, join(path, "subject"), m.get("subject")),
        timeout_secs=get_number(
            ctx, join(path, "timeout_secs"), m.get("timeout_secs"), 30.0, (0, 300, False)
        ),
    )


def _login(
    ctx: Ctx, path: str, m: Mapping[str, object], tls: str
) -> tuple[str | None, Secret | None]:
    username = get_str(ctx, join(path, "username"), m.get("username"))
    password, where = get_secret(ctx, path, m, "password")
    if username == "":
        ctx.add(join(path, "username"), "must not be empty (leave it out to send without AUTH)")
    if username and password is None and where == "":
        ctx.add(join(path, "username"), "needs password or password_file")
    if password is not None and not username:
        ctx.add(where, "needs username")
    if password is not None and tls == "none":
        ctx.warn(where, "tls: none sends the password unencrypted")
    return username or None, password


def _address(ctx: Ctx, path: str, value: object) -> str | None:
    """One mail address (`ops@example.net`, or `Ops <ops@example.net>`)."""
    text = get_str(ctx, path, value)
    if text is None:
        if value is None:
            ctx.add(path, "required: a mail address")
        return None
    name, addr = parseaddr(text)
    try:
        Address(display_name=name, addr_spec=addr)
    except (ValueError, IndexError):
        addr = ""
    if "@" not in addr or any(c.isspace() for c in addr) or not text.isprintable():
        ctx.add(path, f"not a mail address: {text[:80]!r}")
        return None
    return text


def _recipients(ctx: Ctx, path: str, value: object) -> tuple[str, ...]:
    if value is None:
        ctx.add(path, "required: a list of mail addresses")
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        ctx.add(path, "expected a non-empty list of mail addresses")
        return ()
    found = (_address(ctx, f"{path}[{i}]", item) for i, item in enumerate(value))
    return tuple(a for a in found if a)


def _subject(ctx: Ctx, path: str, value: object) -> str:
    """The template: text with `{severity}`, `{summary}`, `{cluster}`, `{count}`."""
    text = get_str(ctx, path, value, DEFAULT_SUBJECT) or ""
    if not text.strip():
        ctx.add(path, "must not be empty")
        return DEFAULT_SUBJECT
    if not text.isprintable():
        ctx.add(path, "must be one line without control characters")
        return DEFAULT_SUBJECT
    unknown = [f for f in _FIELD.findall(text) if f not in SUBJECT_FIELDS]
    if unknown:
        known = ", ".join("{" + f + "}" for f in SUBJECT_FIELDS)
        ctx.add(path, f"unknown field {{{unknown[0]}}} (known: {known})")
        return DEFAULT_SUBJECT
    return text


def render_subject(template: str, fields: Mapping[str, str]) -> str:
    """`template` with each `{field}` replaced (other braces are kept as written)."""
    return _FIELD.sub(lambda m: fields.get(m.group(1), m.group(0)), template)
