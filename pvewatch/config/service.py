"""The `store:` and `http:` sections: where pvewatch keeps its state, and where it
listens for /metrics and health checks (its TLS and basic auth: `web`)."""

from __future__ import annotations

from pvewatch.config.reading import Ctx, get_integer, get_mapping, get_path, get_str
from pvewatch.config.types import (
    DEFAULT_LISTEN,
    DEFAULT_STORE_PATH,
    HttpConfig,
    StoreConfig,
    split_host_port,
)
from pvewatch.config.web import WEB_KEYS, web_security

_STORE_KEYS = frozenset({"path", "retention_days"})
_HTTP_KEYS = frozenset({"listen", "web_config_file"}) | WEB_KEYS


def store_section(ctx: Ctx, value: object) -> StoreConfig:
    m = {} if value is None else get_mapping(ctx, "store", value, _STORE_KEYS)
    if m is None:
        return StoreConfig()
    return StoreConfig(
        path=get_path(ctx, "store.path", m.get("path"), DEFAULT_STORE_PATH),
        retention_days=get_integer(
            ctx, "store.retention_days", m.get("retention_days"), 30, 1, 36500
        ),
    )


def http_section(ctx: Ctx, value: object) -> HttpConfig:
    m = {} if value is None else get_mapping(ctx, "http", value, _HTTP_KEYS)
    if m is None:
        return HttpConfig()
    tls, users = web_security(ctx, "http", m)
    # `listen:` written empty or null turns the listener off; left out, it is the default.
    if "listen" in m and m["listen"] in (None, ""):
        return HttpConfig(listen=None, tls=tls, basic_auth_users=users)
    listen = (get_str(ctx, "http.listen", m.get("listen"), DEFAULT_LISTEN) or "").strip()
    if split_host_port(listen) is None:
        ctx.add("http.listen", "expected HOST:PORT or [IPv6]:PORT, e.g. 127.0.0.1:9886")
        listen = DEFAULT_LISTEN
    return HttpConfig(listen=listen, tls=tls, basic_auth_users=users)
