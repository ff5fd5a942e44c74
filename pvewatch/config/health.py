"""`http.health_check`: what `pvewatch health` (the Docker image's HEALTHCHECK) needs to get
past the listener's own security, which it probes from inside:

    http:
      basic_auth_users: {prometheus: $2y$10$...}
      health_check:
        user: prometheus                              # one of basic_auth_users
        password_file: /run/secrets/metrics_password  # its plaintext password
        # cert_file: /etc/pvewatch/probe.crt          # when client certificates are required
        # key_file: /etc/pvewatch/probe.key

The listener never reads this section: it gives the probe no way in that a scrape lacks.
The password comes from a file (or `$CREDENTIALS_DIRECTORY`), like every secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pvewatch.config.reading import Ctx, get_mapping, get_secret, get_str, join
from pvewatch.config.types import HealthCheckConfig
from pvewatch.secret import Secret

_KEYS = frozenset({"user", "password", "password_file", "cert_file", "key_file"})


def health_check_section(
    ctx: Ctx, path: str, value: object, users: Mapping[str, Secret]
) -> HealthCheckConfig:
    """`value` (at `path`) checked against the listener's `users` (user → bcrypt hash)."""
    m = None if value is None else get_mapping(ctx, path, value, _KEYS)
    if m is None:
        return HealthCheckConfig()
    user = get_str(ctx, join(path, "user"), m.get("user")) or None
    password, _ = get_secret(ctx, path, m, "password")
    if (user is None) != ("password" not in m and "password_file" not in m):
        ctx.add(path, "set user and password (or password_file) together")
    if user is not None and users and user not in users:
        ctx.add(join(path, "user"), f"{user!r} is not one of http basic_auth_users")
    elif user is not None and not users:
        ctx.warn(join(path, "user"), "unused: the listener has no basic_auth_users")
    cert, key = (_path(ctx, join(path, k), m.get(k)) for k in ("cert_file", "key_file"))
    if (cert is None) != (key is None) and ("cert_file" in m) != ("key_file" in m):
        ctx.add(path, "set cert_file and key_file together")
    return HealthCheckConfig(user=user, password=password, cert_file=cert, key_file=key)


def _path(ctx: Ctx, path: str, value: object) -> Path | None:
    s = get_str(ctx, path, value)
    if s == "":
        ctx.add(path, "must not be empty")
    return ctx.config_dir / s if s else None
