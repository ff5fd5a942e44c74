"""The `store:` and `http:` sections: where pvewatch keeps its state, and where it
listens for /metrics and health checks (its TLS and basic auth: `web`; how `pvewatch
health` gets in: `health`)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path

from pvewatch.config.health import health_check_section
from pvewatch.config.reading import (
    Ctx,
    expand_env,
    get_enum,
    get_integer,
    get_mapping,
    get_number,
    get_path,
    get_secret,
    get_str,
    read_document,
)
from pvewatch.config.types import (
    DEFAULT_LISTEN,
    DEFAULT_STORE_PATH,
    HttpConfig,
    PostgresConfig,
    StoreConfig,
    WebTlsConfig,
    split_host_port,
)
from pvewatch.config.web import WEB_KEYS, web_security
from pvewatch.errors import ConfigError

_SQLITE_KEYS = frozenset({"path"})
_POSTGRES_KEYS = frozenset(
    {"dsn", "dsn_file", "host", "port", "dbname", "user", "password", "password_file"}
    | {"replica_id", "leader_check_secs"}
)
_STORE_KEYS = frozenset({"type", "retention_days"}) | _SQLITE_KEYS | _POSTGRES_KEYS
_HTTP_KEYS = frozenset({"listen", "web_config_file", "health_check"}) | WEB_KEYS
# A password inside a DSN: `password=...` (key/value) or `user:password@` (URL).
_DSN_PASSWORD = re.compile(r"password\s*=|://[^/@]*:[^/@]*@", re.IGNORECASE)


def store_section(ctx: Ctx, value: object) -> StoreConfig:
    m = {} if value is None else get_mapping(ctx, "store", value, _STORE_KEYS)
    if m is None:
        return StoreConfig()
    kind = get_enum(ctx, "store.type", m.get("type"), ("sqlite", "postgres"))
    other = _POSTGRES_KEYS if kind == "sqlite" else _SQLITE_KEYS
    for key in sorted(other & m.keys()):
        ctx.add(f"store.{key}", f"not a key of a {kind} store")
    return StoreConfig(
        type=kind,
        path=get_path(ctx, "store.path", m.get("path"), DEFAULT_STORE_PATH),
        retention_days=get_integer(
            ctx, "store.retention_days", m.get("retention_days"), 30, 1, 36500
        ),
        postgres=_postgres(ctx, m) if kind == "postgres" else None,
    )


def _postgres(ctx: Ctx, m: dict[str, object]) -> PostgresConfig:
    dsn, dsn_key = get_secret(ctx, "store", m, "dsn", sensitive=False)
    if dsn is not None and _DSN_PASSWORD.search(dsn.reveal()):
        ctx.inline_secret(dsn_key, m.get("dsn"))
    password, _ = get_secret(ctx, "store", m, "password")
    if dsn is not None and "://" in dsn.reveal():
        scheme = dsn.reveal().partition("://")[0]
        if scheme not in ("postgresql", "postgres"):
            ctx.add(dsn_key, f"expected a postgresql:// URL, got a {scheme}:// one")
    host = get_str(ctx, "store.host", m.get("host")) or None
    if dsn is None and host is None and "dsn" not in m and "dsn_file" not in m:
        ctx.add("store", "a postgres store needs dsn (or dsn_file) or host")
    replica_id = (get_str(ctx, "store.replica_id", m.get("replica_id")) or "").strip()
    if len(replica_id) > 48:
        ctx.add("store.replica_id", "at most 48 characters (it is sent as application_name)")
    return PostgresConfig(
        dsn=dsn,
        host=host,
        port=get_integer(ctx, "store.port", m.get("port"), 0, 1, 65535) or None,
        dbname=get_str(ctx, "store.dbname", m.get("dbname")) or None,
        user=get_str(ctx, "store.user", m.get("user")) or None,
        password=password,
        replica_id=replica_id or None,
        leader_check_secs=get_number(
            ctx, "store.leader_check_secs", m.get("leader_check_secs"), 2.0, (0.1, 60.0, True)
        ),
    )


def http_section(ctx: Ctx, value: object) -> HttpConfig:
    m = {} if value is None else get_mapping(ctx, "http", value, _HTTP_KEYS)
    if m is None:
        return HttpConfig()
    tls, users = web_security(ctx, "http", m)
    health = health_check_section(ctx, "http.health_check", m.get("health_check"), users)
    # `listen:` written empty or null turns the listener off; left out, it is the default.
    if "listen" in m and m["listen"] in (None, ""):
        return HttpConfig(listen=None, tls=tls, basic_auth_users=users, health_check=health)
    listen = (get_str(ctx, "http.listen", m.get("listen"), DEFAULT_LISTEN) or "").strip()
    host_port = split_host_port(listen)
    if host_port is None:
        ctx.add("http.listen", "expected HOST:PORT or [IPv6]:PORT, e.g. 127.0.0.1:9886")
        listen = DEFAULT_LISTEN
    elif not _loopback(host_port[0]) and not users and not _client_certificates(tls):
        ctx.warn(
            "http.listen",
            f"{listen} is reachable from other machines and nothing authenticates clients"
            " (/metrics lists every guest, node, pool and tag): set basic_auth_users with"
            " tls_server_config, or listen on 127.0.0.1",
        )
    return HttpConfig(listen=listen, tls=tls, basic_auth_users=users, health_check=health)


def load_http_config(path: Path, env: Mapping[str, str]) -> HttpConfig:
    """Only the `http:` section of the config file at `path`, read, expanded and checked as
    `load_config` does; raise ConfigError with its problems. For `pvewatch health`, which
    probes the running listener: a problem elsewhere in the file (a secret file gone since
    the daemon started) says nothing about the daemon's health."""
    doc = read_document(path)
    creds = env.get("CREDENTIALS_DIRECTORY") or None
    ctx = Ctx(path.absolute().parent, Path(creds) if creds else None)
    value = doc.get("http") if isinstance(doc, dict) else None
    http = http_section(ctx, expand_env(ctx, env, value, "http"))
    if ctx.problems:
        raise ConfigError(ctx.problems, source=str(path))
    return http


def _loopback(host: str) -> bool:
    """Only this machine can connect (a host name other than localhost may resolve to
    anything, so it counts as reachable)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _client_certificates(tls: WebTlsConfig | None) -> bool:
    return tls is not None and tls.client_auth_type == "RequireAndVerifyClientCert"
