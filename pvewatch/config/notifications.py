"""Notifications pushed by PVE and PBS: a cluster's `notifications:` and `backup_servers:`.

    clusters:
      - name: lab
        ...
        notifications: {token_file: lab.notify}   # PVE sends Authorization: Bearer <token>
    backup_servers:                               # PBS, notifications only for now
      - name: pbs1
        notifications: {token: "${PBS1_NOTIFY_TOKEN}"}

Each named one accepts `POST /notify/<name>` on the listener (pvewatch.http.notify).
Names are unique across clusters and backup servers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pvewatch.config.reading import NAME, Ctx, get_mapping, get_secret, get_str, kind, quote
from pvewatch.config.types import BackupServerConfig, NotificationsConfig
from pvewatch.secret import Secret

_KEYS = frozenset({"token", "token_file"})
_SERVER_KEYS = frozenset({"name", "notifications"})
# What a header value can carry without quoting: printable ASCII, no space.
_TOKEN = re.compile(r"[\x21-\x7e]+")
# Below this a token is guessable by whoever can reach the listener.
MIN_TOKEN_CHARS = 16
RANDOM_HEX_COMMAND = "openssl rand -hex 32"


def notifications(ctx: Ctx, path: str, value: object) -> NotificationsConfig | None:
    """`notifications: {token | token_file}` at `path`; None when absent or wrong."""
    if value is None:
        return None
    m = get_mapping(ctx, path, value, _KEYS)
    if m is None:
        return None
    token, token_path = get_secret(ctx, path, m, "token")
    if m.get("token") is None and m.get("token_file") is None:
        ctx.add(path, "set token or token_file (the bearer token PVE sends)")
        return None
    if token is None:
        return None
    text = token.reveal().strip()
    if not _TOKEN.fullmatch(text):
        ctx.add(token_path, "expected printable ASCII without spaces (a header value)")
        return None
    if len(text) < MIN_TOKEN_CHARS:
        ctx.add(
            token_path,
            f"shorter than {MIN_TOKEN_CHARS} characters: make one with {RANDOM_HEX_COMMAND}",
        )
        return None
    return NotificationsConfig(Secret(text))


def backup_servers_section(
    ctx: Ctx, value: object, cluster_names: Iterable[str]
) -> tuple[BackupServerConfig, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        ctx.add("backup_servers", f"expected a list of backup servers, got {kind(value)}")
        return ()
    taken = {n for n in cluster_names if n}
    servers = []
    for i, item in enumerate(value):
        path = f"backup_servers[{i}]"
        m = get_mapping(ctx, path, item, _SERVER_KEYS)
        if m is None:
            continue
        name = get_str(ctx, f"{path}.name", m.get("name"))
        if m.get("name") is None:
            ctx.add(f"{path}.name", "required")
            continue
        if name is None:
            continue
        if not NAME.fullmatch(name):
            ctx.add(f"{path}.name", "expected lower-case letters, digits, _ and - only")
            continue
        if name in taken:
            ctx.add(
                f"{path}.name",
                f"{quote(name)} is taken (names are unique across clusters and backup servers)",
            )
        taken.add(name)
        if m.get("notifications") is None:
            ctx.add(f"{path}.notifications", "required (a backup server is watched by them)")
            continue
        found = notifications(ctx, f"{path}.notifications", m.get("notifications"))
        if found is not None:
            servers.append(BackupServerConfig(name, found))
    return tuple(servers)
