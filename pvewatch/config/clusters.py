"""The `clusters:` section: names, endpoints, authentication and TLS of each PVE cluster."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from pvewatch.config.checks import checks_section
from pvewatch.config.notifications import notifications
from pvewatch.config.reading import (
    NAME,
    Ctx,
    Invalid,
    credentials_token,
    get_bool,
    get_integer,
    get_mapping,
    get_number,
    get_secret,
    get_str,
    kind,
    quote,
)
from pvewatch.config.types import DEFAULT_MAX_RESPONSE_BYTES, ClusterConfig, TlsConfig
from pvewatch.config.values import TOKEN, USER, endpoint_url
from pvewatch.secret import Secret

_FINGERPRINT = re.compile(r"(?:[0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}|[0-9A-Fa-f]{64}")
_CLUSTER_KEYS = frozenset(
    {"name", "endpoints", "token", "token_file", "username", "password", "password_file"}
    | {"tls", "interval_secs", "timeout_secs", "source_failure_threshold"}
    | {"max_response_bytes", "checks", "notifications"}
)
_TLS_KEYS = frozenset({"verify", "ca_file", "fingerprint"})


def clusters_section(ctx: Ctx, value: object) -> tuple[ClusterConfig, ...]:
    if value is None or value == []:
        ctx.add("clusters", "at least one cluster is required")
        return ()
    if not isinstance(value, list):
        ctx.add("clusters", f"expected a list of clusters, got {kind(value)}")
        return ()
    clusters: list[ClusterConfig] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        cluster = _cluster(ctx, f"clusters[{i}]", item)
        if cluster is None:
            continue
        if cluster.name and cluster.name in seen:
            ctx.add(f"clusters[{i}].name", f"duplicate cluster name {quote(cluster.name)}")
        seen.add(cluster.name)
        clusters.append(cluster)
    return tuple(clusters)


def _cluster(ctx: Ctx, path: str, value: object) -> ClusterConfig | None:
    m = get_mapping(ctx, path, value, _CLUSTER_KEYS)
    if m is None:
        return None
    name = get_str(ctx, f"{path}.name", m.get("name"))
    if m.get("name") is None:
        ctx.add(f"{path}.name", "required")
    elif name is not None and not NAME.fullmatch(name):
        ctx.add(f"{path}.name", "expected lower-case letters, digits, _ and - only")
        name = None
    endpoints = _endpoints(ctx, f"{path}.endpoints", m.get("endpoints"))
    token, username, password = _auth(ctx, path, m, name or "")
    tls = _tls(ctx, f"{path}.tls", m.get("tls"))
    plain = [e for e in endpoints if e.startswith("http://")]
    if plain and tls.mode in ("pinned", "ca_file"):
        # On failover the credentials would go in clear to a server nobody checked.
        what = "tls.fingerprint pins" if tls.mode == "pinned" else "tls.ca_file checks"
        for endpoint in plain:
            ctx.add(
                f"{path}.endpoints",
                f"{endpoint} is plain http, but {what} the server's certificate: the credentials"
                " would travel in clear to an unchecked server; use https://",
            )
    elif plain:
        ctx.warn(f"{path}.endpoints", "plain http: credentials and data travel unencrypted")
    return ClusterConfig(
        name=name or "",
        endpoints=endpoints,
        token=token,
        username=username,
        password=password,
        tls=tls,
        interval_secs=get_number(
            ctx, f"{path}.interval_secs", m.get("interval_secs"), 10.0, (1, 86400, True)
        ),
        timeout_secs=get_number(
            ctx, f"{path}.timeout_secs", m.get("timeout_secs"), 10.0, (0, 3600, False)
        ),
        source_failure_threshold=get_integer(
            ctx, f"{path}.source_failure_threshold", m.get("source_failure_threshold"), 3, 1, 10_000
        ),
        max_response_bytes=get_integer(
            ctx,
            f"{path}.max_response_bytes",
            m.get("max_response_bytes"),
            DEFAULT_MAX_RESPONSE_BYTES,
            64 * 1024,
            16 * 1024**3,
        ),
        checks=checks_section(ctx, f"{path}.checks", m.get("checks")),
        notifications=notifications(ctx, f"{path}.notifications", m.get("notifications")),
    )


def _endpoints(ctx: Ctx, path: str, value: object) -> tuple[str, ...]:
    if value is None or value == []:
        ctx.add(path, "at least one endpoint URL is required")
        return ()
    if not isinstance(value, list):
        ctx.add(path, f"expected a list of URLs, got {kind(value)}")
        return ()
    found: list[str] = []
    for i, item in enumerate(value):
        url = _endpoint(ctx, f"{path}[{i}]", item)
        if url in found:
            ctx.add(f"{path}[{i}]", "duplicate endpoint")
        elif url:
            found.append(url)
    return tuple(found)


def _endpoint(ctx: Ctx, path: str, value: object) -> str | None:
    """ "https://host[:port][/prefix]", port 8006 when https has none, no /api2/json."""
    s = get_str(ctx, path, value)
    if s is None:
        return None
    url, problems = endpoint_url(s)
    for problem in problems:
        ctx.add(path, problem)
    return url


def _auth(
    ctx: Ctx, path: str, m: Mapping[str, object], name: str
) -> tuple[Secret | None, str | None, Secret | None]:
    token, token_from = get_secret(ctx, path, m, "token")
    username = get_str(ctx, f"{path}.username", m.get("username"))
    password, _ = get_secret(ctx, path, m, "password")
    has_token = m.get("token") is not None or m.get("token_file") is not None
    has_user = m.get("username") is not None
    has_password = m.get("password") is not None or m.get("password_file") is not None
    if has_token and (has_user or has_password):
        ctx.add(path, "set token or username+password, not both")
    elif has_user and not has_password:
        ctx.add(f"{path}.password", "required with username (or password_file)")
    elif has_password and not has_user:
        ctx.add(f"{path}.username", "required with password")
    elif not has_token and not has_user:
        token_from = f"{path}.token"
        token = credentials_token(ctx, token_from, name) if name else None
        if token is None:
            ctx.add(path, "set token, token_file or username+password")
    if token is not None and not TOKEN.fullmatch(token.reveal()):
        ctx.add(token_from, "expected USER@REALM!TOKENID=SECRET")
    if username and not USER.fullmatch(username):
        ctx.add(f"{path}.username", "expected USER@REALM, e.g. root@pam")
    return token, username, password


def _tls(ctx: Ctx, path: str, value: object) -> TlsConfig:
    m = {} if value is None else get_mapping(ctx, path, value, _TLS_KEYS)
    if m is None:
        return TlsConfig()
    verify = get_bool(ctx, f"{path}.verify", m.get("verify"), True)
    ca_file = read_ca_file(ctx, f"{path}.ca_file", m.get("ca_file"))
    fingerprints = _fingerprints(ctx, f"{path}.fingerprint", m.get("fingerprint"))
    has_pin, has_ca = m.get("fingerprint") is not None, m.get("ca_file") is not None
    if m.get("verify") is not None and not verify and (has_pin or has_ca):
        what = "fingerprint" if has_pin else "ca_file"
        ctx.add(f"{path}.verify", f"false contradicts {what} (which is a way to verify)")
    elif has_pin and has_ca:
        ctx.add(path, "set fingerprint or ca_file, not both (a pin replaces CA checks)")
    elif not verify:
        ctx.warn(f"{path}.verify", "false: server certificates are NOT checked (INSECURE)")
    return TlsConfig(verify=verify, ca_file=ca_file, fingerprints=fingerprints)


def read_ca_file(ctx: Ctx, path: str, value: object) -> Path | None:
    """A PEM CA bundle's path (relative to the config file), checked to hold a certificate."""
    s = get_str(ctx, path, value)
    if not s:
        if s == "":
            ctx.add(path, "must not be empty")
        return None
    file = ctx.config_dir / s
    try:
        data = file.read_bytes()
    except OSError as e:
        ctx.add(path, f"cannot read {file}: {e.strerror or type(e).__name__}")
        return file
    if b"-----BEGIN CERTIFICATE-----" not in data:
        ctx.add(path, f"{file} holds no PEM certificate")
    return file


def _fingerprints(ctx: Ctx, path: str, value: object) -> tuple[str, ...]:
    if value is None or isinstance(value, Invalid):
        return ()
    items = [(path, value)] if not isinstance(value, list) else list(enumerate(value))
    if not items:
        ctx.add(path, "expected at least one fingerprint")
    found: list[str] = []
    for where, item in items:
        item_path = where if isinstance(where, str) else f"{path}[{where}]"
        s = get_str(ctx, item_path, item)
        if s is None:
            continue
        if not _FINGERPRINT.fullmatch(s.strip()):
            ctx.add(item_path, "expected 32 colon-separated hex bytes (SHA-256), e.g. AB:CD:...")
            continue
        digits = s.strip().replace(":", "").upper()
        pin = ":".join(digits[i : i + 2] for i in range(0, 64, 2))
        if pin not in found:
            found.append(pin)
    return tuple(found)
