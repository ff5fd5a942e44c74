"""The options of `type: webhook` sinks, read once here (`pvewatch.sinks.webhook` builds
the sink from them):

    sinks:
      hook:
        type: webhook
        url: "https://hooks.example.com/pvewatch"   # or url_file (the URL may hold a token)
        method: POST                                 # POST (default) | PUT
        headers:
          X-Team: infra                              # ${VAR} works in values
          Authorization_file: hook-auth              # NAME_file: the value of NAME from a file
        timeout_secs: 10
        tls: {verify: true, ca_file: /etc/ssl/hooks-ca.pem}
        secret: "whsec_…"                            # or a list (rotation), or secret_file
        format: native                               # and the format's options (formats/options.py)

The URL, header values and secrets become `Secret`s: no summary, log line or error shows
them; problems name the key, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pvewatch.config.clusters import read_ca_file
from pvewatch.config.reading import (
    Ctx,
    Invalid,
    get_bool,
    get_enum,
    get_mapping,
    get_number,
    get_secret,
    get_str,
    join,
    read_secret_file,
)
from pvewatch.config.types import SinkOptions, TlsConfig
from pvewatch.secret import Secret
from pvewatch.sinks import signing
from pvewatch.sinks.formats.base import FormatOptions
from pvewatch.sinks.formats.options import FORMAT_KEYS, format_options

WEBHOOK_KEYS = (
    frozenset({"url", "url_file", "method", "headers", "timeout_secs", "tls"})
    | frozenset({"secret", "secret_file"})
    | FORMAT_KEYS
)
_TLS_KEYS = frozenset({"verify", "ca_file"})
# RFC 9110 field names; values are sent as given, so no control characters.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[^\x00-\x08\x0a-\x1f\x7f]*")
# Headers whose value is a credential (Authorization, X-Api-Key, X-Auth-Token, Cookie...).
_CREDENTIAL_HEADER = re.compile(r"auth|token|key|secret|pass|cookie|session|signature", re.I)
# Set by pvewatch for every message: the signature covers exactly these.
_RESERVED_HEADERS = frozenset(
    {"webhook-id", "webhook-timestamp", "webhook-signature", "content-length", "host"}
    | {"transfer-encoding", "connection"}
)


@dataclass(frozen=True, slots=True)
class WebhookOptions(SinkOptions):
    url: Secret  # may carry a token: never shown
    method: str = "POST"
    headers: Mapping[str, Secret] = field(default_factory=dict)
    timeout_secs: float = 10.0  # the whole exchange, answer included
    tls: TlsConfig = field(default_factory=TlsConfig)
    secret: tuple[Secret, ...] = ()  # every signing secret (several while rotating)
    format: FormatOptions = field(default_factory=FormatOptions)

    def summary(self) -> dict[str, object]:
        """The options, with the format's own beside the sink's (as written in YAML)."""
        mine = SinkOptions.summary(self)
        del mine["format"]
        return mine | self.format.summary()


def webhook_options(ctx: Ctx, path: str, m: Mapping[str, object]) -> WebhookOptions:
    return WebhookOptions(
        url=_url(ctx, path, m) or Secret(""),  # "": a problem already says why
        method=get_enum(ctx, join(path, "method"), _upper(m.get("method")), ("POST", "PUT")),
        headers=_headers(ctx, join(path, "headers"), m.get("headers")),
        timeout_secs=get_number(
            ctx, join(path, "timeout_secs"), m.get("timeout_secs"), 10.0, (0, 300, False)
        ),
        tls=tls_options(ctx, join(path, "tls"), m.get("tls")),
        secret=_secrets(ctx, path, m),
        format=format_options(ctx, path, m),
    )


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _url(ctx: Ctx, path: str, m: Mapping[str, object]) -> Secret | None:
    url, where = get_secret(ctx, path, m, "url", sensitive=False)
    if url is None:
        if m.get("url") is None and m.get("url_file") is None:
            ctx.add(join(path, "url"), "required (or url_file)")
        return None
    # Never quote the URL: it may carry a token.
    try:
        parts = urlsplit(url.reveal().strip())
        parts.port  # noqa: B018 — raises ValueError for a bad port
    except ValueError:
        ctx.add(where, "not a valid URL")
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        ctx.add(where, "expected an http:// or https:// URL with a host")
        return None
    if parts.scheme == "http":
        ctx.warn(where, "plain http: events travel unencrypted")
    if _carries_credential(parts.username, parts.query, parts.path):
        ctx.inline_secret(where, m.get("url"))
    return Secret(url.reveal().strip())


def _carries_credential(user: str | None, query: str, path: str) -> bool:
    """A user, a query (Gotify's ?token=, a Teams workflow's &sig=) or a long token in the
    path (Slack's and Discord's webhook URLs are the credential)."""
    return bool(user or query) or any(len(part) >= 20 for part in path.split("/"))


def _headers(ctx: Ctx, path: str, value: object) -> dict[str, Secret]:
    m = None if value is None else get_mapping(ctx, path, value, None)
    if not m:
        return {}
    headers: dict[str, Secret] = {}
    names = dict.fromkeys(k.removesuffix("_file") for k in m)
    seen: set[str] = set()
    for name in names:
        if not _HEADER_NAME.fullmatch(name):
            ctx.add(join(path, name), "not a valid HTTP header name")
            continue
        if name.lower() in _RESERVED_HEADERS:
            ctx.add(join(path, name), "set by pvewatch for every message; cannot be configured")
            continue
        if name.lower() in seen:
            ctx.add(join(path, name), "set twice (header names ignore case)")
            continue
        seen.add(name.lower())
        sensitive = _CREDENTIAL_HEADER.search(name) is not None
        secret, where = get_secret(ctx, path, m, name, sensitive=sensitive)
        if secret is None:
            continue
        if not _HEADER_VALUE.fullmatch(secret.reveal()):
            ctx.add(where, "control characters (such as a line break) are not allowed")
            continue
        headers[name] = secret
    return headers


def tls_options(ctx: Ctx, path: str, value: object) -> TlsConfig:
    """A sink's `tls: {verify, ca_file}` (webhook and mqtt): verified by default."""
    m = None if value is None else get_mapping(ctx, path, value, _TLS_KEYS)
    if not m:
        return TlsConfig()
    verify = get_bool(ctx, join(path, "verify"), m.get("verify"), True)
    ca_file = read_ca_file(ctx, join(path, "ca_file"), m.get("ca_file"))
    if not verify and ca_file is not None:
        ctx.add(join(path, "verify"), "false contradicts ca_file (which is a way to verify)")
    elif not verify:
        ctx.warn(join(path, "verify"), "false: the receiver's certificate is NOT checked")
    return TlsConfig(verify=verify, ca_file=ca_file)


def _secrets(ctx: Ctx, path: str, m: Mapping[str, object]) -> tuple[Secret, ...]:
    """`secret` / `secret_file`: one, or a list while rotating (each message is signed
    with every one, so receivers may check either)."""
    inline, files = m.get("secret"), m.get("secret_file")
    if inline is not None and files is not None:
        ctx.add(path, "set secret or secret_file, not both")
        return ()
    key = "secret" if inline is not None else "secret_file"
    value = inline if inline is not None else files
    if value is None or isinstance(value, Invalid):
        return ()
    listed = isinstance(value, list)
    items = value if isinstance(value, list) else [value]
    if not items:
        ctx.add(join(path, key), "empty: list at least one secret, or leave the key out")
    secrets = []
    for i, item in enumerate(items):
        where = f"{join(path, key)}[{i}]" if listed else join(path, key)
        if key == "secret_file":
            secret = read_secret_file(ctx, where, item)
        else:
            text = get_str(ctx, where, item)
            secret = Secret(text) if text is not None else None
            ctx.inline_secret(where, item)
        if secret is not None and _valid_secret(ctx, where, secret):
            secrets.append(secret)
    return tuple(secrets)


def _valid_secret(ctx: Ctx, path: str, secret: Secret) -> bool:
    try:
        key = signing.decode_secret(secret.reveal())
    except ValueError as e:
        ctx.add(path, f"not a webhook secret: {e}")
        return False
    if len(key) < signing.RECOMMENDED_KEY_BYTES:
        ctx.warn(path, f"a key of {len(key)} bytes is short; use 24 to 64 random bytes")
    return True
