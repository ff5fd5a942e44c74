"""Loading watch.yaml: `load_config`, `check_config` (`pvewatch check-config`) and the
summary it prints. Pure: reads the config file, the secret and CA files it
names, and the environment mapping it is given (never `os.environ`).

`load_config(path, env)` validates everything at once and raises one `ConfigError` that
lists every problem with its key path (`clusters[0].tls.fingerprint: ...`).
`check_config(...)` is `pvewatch check-config`: a summary and 0, or every problem and 2.

Rules that are part of the contract (see watch.yaml.example):
- `${VAR}` and `${VAR:-default}` are expanded inside string values after YAML parsing, so
  a value cannot inject YAML; `$$` is a literal `$`. `:-` follows the shell: an empty
  variable takes the default too.
- Every secret `X` may instead come from `X_file`. Relative `*_file` paths resolve against
  `$CREDENTIALS_DIRECTORY` (systemd LoadCredential) when set, else against the config
  file's directory. With no credentials configured for a cluster, the file
  `$CREDENTIALS_DIRECTORY/<cluster name>.token` is used when it exists.
- Other relative paths (ca_file, store.path, a log sink's path) resolve against the
  config file's directory.
- With no sinks configured there is one: `console`, a text log on stdout.
- Risky but valid setups are `Config.warnings` (printed by check-config, logged at each
  start and reload): plain http, verification off, a non-loopback listener nobody
  authenticates at, bcrypt cost below 10, inline secrets in a file others can read, ...
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from pvewatch.config.clusters import clusters_section
from pvewatch.config.logging import log_section
from pvewatch.config.notifications import backup_servers_section
from pvewatch.config.reading import Ctx, expand_env, get_mapping, read_document
from pvewatch.config.rules import rules_sections
from pvewatch.config.service import http_section, store_section
from pvewatch.config.sinks import SinkTypes, sinks_section
from pvewatch.config.types import (
    ClusterConfig,
    Config,
    HttpConfig,
)
from pvewatch.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/pvewatch/watch.yaml")
_RULE_KEYS = frozenset({"expect", "maintenance", "rules", "thresholds"})
_ROOT_KEYS = frozenset({"clusters", "store", "http", "sinks", "log", "backup_servers"})


def load_config(path: Path, env: Mapping[str, str], *, sink_types: SinkTypes) -> Config:
    """Read, expand and validate `path`; raise ConfigError listing every problem.
    `sink_types`: the rows that read each sink type's options (pvewatch.sinks.table)."""
    doc = read_document(path)
    try:
        config_dir = path.absolute().parent
    except OSError:  # the working directory is gone
        config_dir = path.parent
    creds = env.get("CREDENTIALS_DIRECTORY") or None
    ctx = Ctx(config_dir, Path(creds) if creds else None)
    config = _root(ctx, expand_env(ctx, env, doc), sink_types)
    if ctx.problems:
        raise ConfigError(ctx.problems, source=str(path))
    exposed = _readable_by_others(path, ctx.inline_secrets)
    return replace(config, warnings=(*config.warnings, exposed)) if exposed else config


def _readable_by_others(path: Path, inline: list[str]) -> str | None:
    """The warning for a file that group or others can read and that holds secrets."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return None
    if not inline or not mode & 0o044:
        return None
    keys = ", ".join(inline[:3]) + (f" and {len(inline) - 3} more" if len(inline) > 3 else "")
    return (
        f"{path}: readable by group or others (mode {mode:04o}) and holds secrets inline"
        f" ({keys}): move them to *_file keys (systemd credentials, Docker secrets) or"
        f" chmod 600 {path}"
    )


def check_config(
    path: Path, env: Mapping[str, str], out: TextIO, err: TextIO, *, sink_types: SinkTypes
) -> int:
    """`pvewatch check-config`: print a summary and return 0, or every problem and 2."""
    try:
        config = load_config(path, env, sink_types=sink_types)
    except ConfigError as e:
        print(f"{path}: {len(e.problems)} problem(s):", file=err)
        for problem in e.problems:
            print(f"  {problem}", file=err)
        return 2
    except Exception as e:  # a bug of ours must still not print a traceback or a secret
        print(
            f"{path}: internal error while checking ({type(e).__name__}); please report", file=err
        )
        return 2
    print(f"{path}: OK", file=out)
    for line in summary_lines(config):
        print(f"  {line}", file=out)
    for warning in config.warnings:
        print(f"WARNING: {warning}", file=out)
    return 0


def summary_lines(config: Config) -> list[str]:
    """What the config means, one line per item, without any secret."""
    lines = [_cluster_summary(c) for c in config.clusters]
    lines += [
        f"backup server {b.name}: notifications at /notify/{b.name}" for b in config.backup_servers
    ]
    store = config.store
    where = store.postgres.where() if store.postgres else store.path
    lines.append(f"store {where} (events kept {store.retention_days} days)")
    lines.append(_http_summary(config.http))
    for sink in config.sinks:
        opts = ", ".join(f"{k}={v}" for k, v in sink.options.summary().items())
        lines.append(f"sink {sink.name}: {sink.type}" + (f" ({opts})" if opts else ""))
    return lines


def _http_summary(http: HttpConfig) -> str:
    if http.listen is None:
        return "http listener off (no /metrics, /healthz, /readyz)"
    scheme = "https" if http.tls else "http"
    if http.tls and http.tls.client_auth_type != "NoClientCert":
        scheme += f" (client certificates: {http.tls.client_auth_type})"
    users = len(http.basic_auth_users)
    auth = f"; basic auth for {users} user(s)" if users else ""
    return f"http listen {http.listen} ({scheme}{auth})"


def _cluster_summary(c: ClusterConfig) -> str:
    if c.token is not None:
        auth = "token " + c.token.reveal().split("=", 1)[0]  # the token id is not secret
    else:
        auth = f"password for {c.username}"
    tls = {
        "pinned": f"pinned ({len(c.tls.fingerprints)} fingerprint(s))",
        "ca_file": f"ca_file {c.tls.ca_file}",
        "system": "system CAs",
        "insecure": "INSECURE (certificates not checked)",
    }[c.tls.mode]
    if all(e.startswith("http://") for e in c.endpoints):
        tls = "none (plain http)"
    notify = f"; notifications at /notify/{c.name}" if c.notifications else ""
    return (
        f"cluster {c.name}: {', '.join(c.endpoints)}; auth {auth}; tls {tls}; "
        f"every {c.interval_secs:g}s (timeout {c.timeout_secs:g}s, "
        f"unreachable after {c.source_failure_threshold} failed polls){notify}"
    )


def _root(ctx: Ctx, doc: object, sink_types: SinkTypes) -> Config:
    if doc is None:
        ctx.add("", "the file is empty; at least clusters is required")
        return Config(clusters=())
    m = get_mapping(ctx, "", doc, _ROOT_KEYS | _RULE_KEYS)
    if m is None:
        return Config(clusters=())
    clusters = clusters_section(ctx, m.get("clusters"))
    return Config(
        clusters=clusters,
        store=store_section(ctx, m.get("store")),
        http=http_section(ctx, m.get("http")),
        sinks=sinks_section(ctx, m.get("sinks"), sink_types),
        rules=rules_sections(
            ctx, m.get("expect"), m.get("maintenance"), m.get("rules"), m.get("thresholds")
        ),
        log=log_section(ctx, m.get("log")),
        backup_servers=backup_servers_section(
            ctx, m.get("backup_servers"), [c.name for c in clusters]
        ),
        warnings=tuple(ctx.warnings),
    )
