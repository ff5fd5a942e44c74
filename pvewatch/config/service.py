"""The `store:` and `http:` sections: where pvewatch keeps its state, and where it
listens for /metrics and health checks."""

from __future__ import annotations

from pvewatch.config.reading import Ctx, get_integer, get_mapping, get_path, get_str
from pvewatch.config.types import (
    DEFAULT_LISTEN,
    DEFAULT_STORE_PATH,
    HttpConfig,
    StoreConfig,
    split_host_port,
)

_STORE_KEYS = frozenset({"path", "retention_days"})
_HTTP_KEYS = frozenset({"listen"})


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
    listen = get_str(ctx, "http.listen", m.get("listen"), DEFAULT_LISTEN) or ""
    if split_host_port(listen.strip()) is None:
        ctx.add("http.listen", "expected HOST:PORT or [IPv6]:PORT, e.g. 127.0.0.1:9886")
        return HttpConfig()
    return HttpConfig(listen=listen.strip())
