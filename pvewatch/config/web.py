"""The listener's security, in the shape of Prometheus' web config (exporter-toolkit), so
that a `web.yml` written for node_exporter works here unchanged:

    http:
      listen: "0.0.0.0:9886"
      tls_server_config:          # optional: HTTPS
        cert_file: metrics.crt
        key_file: metrics.key
        client_ca_file: ca.crt    # optional, with client_auth_type
        client_auth_type: RequireAndVerifyClientCert
      basic_auth_users:           # optional: user → bcrypt hash
        prometheus: $2y$10$...
      # or both of the above from a file of the same shape:
      # web_config_file: /etc/pvewatch/web.yml

Paths inside a web config file resolve against that file's directory (as exporter-toolkit
does); the file is not `${VAR}`-expanded. Keys of exporter-toolkit that pvewatch does not
implement are refused by name rather than ignored, since each of them tightens security.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from pvewatch.config.reading import (
    Ctx,
    get_enum,
    get_mapping,
    get_str,
    join,
    kind,
    read_document,
)
from pvewatch.config.types import WebTlsConfig
from pvewatch.errors import ConfigError
from pvewatch.secret import Secret

WEB_KEYS = frozenset({"tls_server_config", "basic_auth_users"})
_TLS_KEYS = frozenset(
    {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version"} | {"max_version"}
)
# exporter-toolkit keys that are valid there but not implemented here.
_UNSUPPORTED = frozenset(
    {"http_server_config", "rate_limit", "cert", "key", "cipher_suites"}
    | {"curve_preferences", "prefer_server_cipher_suites", "client_allowed_sans"}
)
# Python's ssl cannot ask for a client certificate without verifying it, so the two
# "accept any certificate" policies of Go's crypto/tls are not offered.
_CLIENT_AUTH = ("NoClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert")
_TLS_VERSIONS = ("TLS12", "TLS13", "TLS10", "TLS11")
_BCRYPT = re.compile(r"\$2[abxy]?\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
# Below it a leaked hash falls to a GPU quickly; 10 is htpasswd's and Prometheus' default.
_MIN_BCRYPT_COST = 10
_HTPASSWD = "htpasswd -nBC 10 '' | tr -d ':'"


def web_security(
    ctx: Ctx, path: str, m: Mapping[str, object]
) -> tuple[WebTlsConfig | None, Mapping[str, Secret]]:
    """TLS and basic auth of the listener, inline in `m` or from `m["web_config_file"]`."""
    file_value = m.get("web_config_file")
    inline = [key for key in sorted(WEB_KEYS) if m.get(key) is not None]
    if file_value is None:
        return _web(ctx, path, m, ctx.config_dir)
    if inline:
        ctx.add(path, f"set web_config_file or {' and '.join(inline)}, not both")
        return None, {}
    file_path = join(path, "web_config_file")
    name = get_str(ctx, file_path, file_value)
    if not name:
        if name == "":
            ctx.add(file_path, "must not be empty")
        return None, {}
    file = ctx.config_dir / name
    try:
        doc = read_document(file)
    except ConfigError as e:
        for problem in e.problems:
            ctx.add(file_path, problem)
        return None, {}
    if doc is None:
        return None, {}
    known = WEB_KEYS | _UNSUPPORTED
    checked = get_mapping(ctx, file_path, doc, known)
    return (None, {}) if checked is None else _web(ctx, file_path, checked, file.parent)


def _web(
    ctx: Ctx, path: str, m: Mapping[str, object], base: Path
) -> tuple[WebTlsConfig | None, Mapping[str, Secret]]:
    _refuse_unsupported(ctx, path, m)
    tls_value, users_value = m.get("tls_server_config"), m.get("basic_auth_users")
    tls = None if tls_value is None else _tls(ctx, join(path, "tls_server_config"), tls_value, base)
    users = {} if users_value is None else _users(ctx, join(path, "basic_auth_users"), users_value)
    if users and tls is None:
        ctx.warn(path, "basic_auth_users without tls_server_config: passwords cross in clear")
    return tls, MappingProxyType(users)


def _tls(ctx: Ctx, path: str, value: object, base: Path) -> WebTlsConfig | None:
    m = get_mapping(ctx, path, value, _TLS_KEYS | _UNSUPPORTED)
    if m is None:
        return None
    _refuse_unsupported(ctx, path, m)
    files = {name: _file(ctx, join(path, name), m.get(name), base) for name in _FILE_KEYS}
    auth = get_enum(ctx, join(path, "client_auth_type"), m.get("client_auth_type"), _CLIENT_AUTH)
    low = get_enum(ctx, join(path, "min_version"), m.get("min_version"), _TLS_VERSIONS)
    high = None
    if m.get("max_version") is not None:
        high = get_enum(ctx, join(path, "max_version"), m.get("max_version"), _TLS_VERSIONS)
        if sorted((low, high)) != [low, high]:
            ctx.add(join(path, "max_version"), f"{high} is below min_version {low}")
    cert, key, ca = files["cert_file"], files["key_file"], files["client_ca_file"]
    for name, file in (("cert_file", cert), ("key_file", key)):
        if file is None and m.get(name) is None:
            ctx.add(join(path, name), "required with tls_server_config")
    if auth != "NoClientCert" and ca is None and m.get("client_ca_file") is None:
        ctx.add(join(path, "client_ca_file"), f"required with client_auth_type {auth}")
    elif auth == "NoClientCert" and ca is not None:
        ctx.warn(join(path, "client_ca_file"), "unused: client_auth_type is NoClientCert")
    if cert is None or key is None:
        return None
    _check_loadable(ctx, path, cert, key, ca)
    return WebTlsConfig(cert, key, ca, auth, low, high)


_FILE_KEYS = ("cert_file", "key_file", "client_ca_file")


def _refuse_unsupported(ctx: Ctx, path: str, m: Mapping[str, object]) -> None:
    for key in sorted(_UNSUPPORTED & m.keys()):
        ctx.add(join(path, key), "not supported by pvewatch (refused rather than ignored)")


def _file(ctx: Ctx, path: str, value: object, base: Path) -> Path | None:
    s = get_str(ctx, path, value)
    if s == "":
        ctx.add(path, "must not be empty")
    if not s:
        return None
    file = base / s
    try:
        with file.open("rb"):
            pass
    except OSError as e:
        ctx.add(path, f"cannot read {file}: {e.strerror or type(e).__name__}")
        return None
    return file


def _check_loadable(ctx: Ctx, path: str, cert: Path, key: Path, ca: Path | None) -> None:
    """Load the files as the listener will, so a wrong key fails `check-config`, not the
    daemon's start. ssl's messages name no file content."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key, password=_no_passphrase)
    except (ssl.SSLError, ValueError, TypeError) as e:
        ctx.add(path, f"cannot load cert_file {cert} with key_file {key}: {_reason(e)}")
    if ca is None:
        return
    try:
        context.load_verify_locations(cafile=ca)
    except (ssl.SSLError, ValueError) as e:
        ctx.add(join(path, "client_ca_file"), f"{ca} holds no usable certificate: {_reason(e)}")


def _no_passphrase() -> str:
    raise ValueError("the key is encrypted; pvewatch needs an unencrypted key file")


def _reason(e: Exception) -> str:
    reason = getattr(e, "reason", None)
    return str(reason or e or type(e).__name__)


def _users(ctx: Ctx, path: str, value: object) -> dict[str, Secret]:
    m = get_mapping(ctx, path, value, None)
    if m is None:
        return {}
    users: dict[str, Secret] = {}
    for user, hashed in m.items():
        where = join(path, user)
        if not user or ":" in user:
            ctx.add(where, "a user name must be non-empty and without ':'")
        if not isinstance(hashed, str):
            ctx.add(where, f"expected a bcrypt hash ($2y$...), got {kind(hashed)}")
        elif not (match := _BCRYPT.fullmatch(hashed.strip())):
            # Never quote the value: it may be a password written where a hash belongs.
            ctx.add(where, f"not a bcrypt hash (make one with: {_HTPASSWD})")
        else:
            if int(match.group(1)) < _MIN_BCRYPT_COST:
                ctx.warn(
                    where,
                    f"bcrypt cost {match.group(1)} is below {_MIN_BCRYPT_COST}: a leaked hash"
                    f" is cheap to crack; make a new one with: {_HTPASSWD}",
                )
            users[user] = Secret(hashed.strip())
    if not m:
        ctx.add(path, "expected at least one user")
    return users
