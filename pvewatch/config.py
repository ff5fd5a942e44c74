"""watch.yaml → frozen dataclasses. Pure: reads the config file, the secret and CA files it
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
"""

from __future__ import annotations

import contextlib
import difflib
import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TextIO
from urllib.parse import urlsplit

import yaml

from pvewatch.errors import ConfigError
from pvewatch.secret import Secret

DEFAULT_CONFIG_PATH = Path("/etc/pvewatch/watch.yaml")
_DEFAULT_STORE_PATH = Path("/var/lib/pvewatch/state.db")
_DEFAULT_LISTEN = "127.0.0.1:9886"


@dataclass(frozen=True, slots=True)
class TlsConfig:
    verify: bool = True
    ca_file: Path | None = None
    # SHA-256 fingerprints of accepted server certificates (upper-case hex with colons).
    # A pin replaces CA checks; several pins allow rotation.
    fingerprints: tuple[str, ...] = ()

    @property
    def mode(self) -> str:
        """One of "pinned", "ca_file", "system", "insecure"."""
        if not self.verify:
            return "insecure"
        if self.fingerprints:
            return "pinned"
        return "ca_file" if self.ca_file else "system"


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    name: str
    endpoints: tuple[str, ...]
    token: Secret | None = None  # "USER@REALM!ID=SECRET"
    username: str | None = None
    password: Secret | None = None
    tls: TlsConfig = field(default_factory=TlsConfig)
    interval_secs: float = 10.0
    timeout_secs: float = 10.0
    source_failure_threshold: int = 3


@dataclass(frozen=True, slots=True)
class StoreConfig:
    path: Path = _DEFAULT_STORE_PATH
    retention_days: int = 30


@dataclass(frozen=True, slots=True)
class HttpConfig:
    listen: str = _DEFAULT_LISTEN

    def host_port(self) -> tuple[str, int]:
        """`("127.0.0.1", 9886)`; an IPv6 host comes without brackets."""
        parsed = split_host_port(self.listen)
        if parsed is None:
            raise ValueError(f"http.listen: not HOST:PORT: {self.listen!r}")
        return parsed


@dataclass(frozen=True, slots=True)
class SinkConfig:
    """One sink: `type` picks the implementation, `options` are its own keys, validated
    by that sink's table entry."""

    name: str
    type: str
    options: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Config:
    clusters: tuple[ClusterConfig, ...]
    store: StoreConfig = field(default_factory=StoreConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    sinks: tuple[SinkConfig, ...] = ()
    # Valid but risky settings ("verify: false", plain http), each "key.path: why".
    warnings: tuple[str, ...] = ()


# ---------------------------------------------------------------- public entry points


def load_config(path: Path, env: Mapping[str, str]) -> Config:
    """Read, expand and validate `path`; raise ConfigError listing every problem."""
    doc = _read_document(path)
    try:
        config_dir = path.absolute().parent
    except OSError:  # the working directory is gone
        config_dir = path.parent
    creds = env.get("CREDENTIALS_DIRECTORY") or None
    ctx = _Ctx(config_dir, Path(creds) if creds else None)
    expanded = _Expander(env, ctx).tree(doc, "", 0)
    config = _root(ctx, expanded)
    if ctx.problems:
        raise ConfigError(ctx.problems, source=str(path))
    return config


def check_config(path: Path, env: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    """`pvewatch check-config`: print a summary and return 0, or every problem and 2."""
    try:
        config = load_config(path, env)
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
    store = config.store
    lines.append(f"store {store.path} (events kept {store.retention_days} days)")
    lines.append(f"http listen {config.http.listen}")
    for sink in config.sinks:
        opts = ", ".join(f"{k}={v}" for k, v in sink.options.items())
        lines.append(f"sink {sink.name}: {sink.type}" + (f" ({opts})" if opts else ""))
    return lines


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
    return (
        f"cluster {c.name}: {', '.join(c.endpoints)}; auth {auth}; tls {tls}; "
        f"every {c.interval_secs:g}s (timeout {c.timeout_secs:g}s, "
        f"unreachable after {c.source_failure_threshold} failed polls)"
    )


def split_host_port(value: str) -> tuple[str, int] | None:
    """ "HOST:PORT" or "[v6]:PORT" → (host, port), or None when malformed."""
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return None
    else:
        host, sep, port = value.rpartition(":")
        if not re.fullmatch(r"[A-Za-z0-9._-]+", host):
            return None
    if not sep or not re.fullmatch(r"[0-9]{1,5}", port) or int(port) > 65535:
        return None
    return host, int(port)


# ---------------------------------------------------------------- reading and expanding

_MAX_CONFIG_BYTES = 1 << 20
_MAX_SECRET_BYTES = 64 << 10
_MAX_NODES = 100_000  # alias bombs: a few lines of YAML can reference millions of nodes
_MAX_DEPTH = 64
_ROOT = "(top level)"


class _Ctx:
    """Where relative paths resolve, and what was found wrong so far."""

    def __init__(self, config_dir: Path, credentials_dir: Path | None) -> None:
        self.config_dir = config_dir
        self.credentials_dir = credentials_dir
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(f"{path or _ROOT}: {message}")

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"{path}: {message}")


class _Invalid:
    """Stands for a value whose expansion already failed, so it is not reported twice."""


_INVALID = _Invalid()


class _FromEnv(str):
    """A string that came out of `${...}` expansion: numbers and booleans may be spelled
    as text there, since the environment has no other type."""


class _Loader(yaml.SafeLoader):
    """safe_load that also notes duplicate keys (plain YAML keeps the last silently)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and not key_node.tag.endswith(":merge"):
                if key_node.value in seen:
                    mark = key_node.start_mark
                    self.duplicates.append(
                        f"line {mark.line + 1}, column {mark.column + 1}: "
                        f"duplicate key {key_node.value!r}"
                    )
                seen.add(key_node.value)
        return super().construct_mapping(node, deep)


def _read_document(path: Path) -> object:
    def fail(message: str) -> ConfigError:
        return ConfigError([f"{path}: {message}"], source=str(path))

    try:
        with path.open("rb") as f:
            raw = f.read(_MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise fail(f"cannot read: {e.strerror or type(e).__name__}") from None
    if len(raw) > _MAX_CONFIG_BYTES:
        raise fail("larger than 1 MiB; is this the config file?")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise fail(f"not UTF-8 text (byte {e.start})") from None
    loader = _Loader(text)
    try:
        doc = loader.get_single_data()
    except yaml.MarkedYAMLError as e:
        # Only the problem and its position: str(e) quotes the line, which may hold a secret.
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise fail(f"{where}invalid YAML: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise fail(f"invalid YAML ({type(e).__name__})") from None
    except RecursionError:
        raise fail("invalid YAML: nested too deeply") from None
    except (ValueError, OverflowError) as e:  # e.g. an impossible date such as 2024-13-45
        raise fail(f"invalid YAML value: {e}") from None
    finally:
        loader.dispose()
    if loader.duplicates:
        raise ConfigError([f"{path}: {d}" for d in loader.duplicates], source=str(path))
    return doc


_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{")


class _Expander:
    def __init__(self, env: Mapping[str, str], ctx: _Ctx) -> None:
        self.env = env
        self.ctx = ctx
        self.nodes = 0

    def tree(self, value: object, path: str, depth: int) -> object:
        self.nodes += 1
        if self.nodes > _MAX_NODES or depth > _MAX_DEPTH:
            raise ConfigError([f"{path or _ROOT}: document too large or nested too deeply"])
        if isinstance(value, dict):
            return {k: self.tree(v, _join(path, k), depth + 1) for k, v in value.items()}
        if isinstance(value, list):
            return [self.tree(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
        if isinstance(value, str) and "$" in value:
            return self.string(value, path)
        return value

    def string(self, value: str, path: str) -> object:
        undefined: list[str] = []
        malformed: list[str] = []

        def substitute(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if m.group(0) == "$$":
                return "$"
            if name is None:
                malformed.append(m.group(0))
                return ""
            found = self.env.get(name)
            if found is not None and (found != "" or default is None):
                return found
            if default is not None:
                return default
            undefined.append(name)
            return ""

        expanded = _REF.sub(substitute, value)
        for name in dict.fromkeys(undefined):
            self.ctx.add(path, f"undefined environment variable {name}")
        if malformed:
            self.ctx.add(path, "invalid ${...}: use ${VAR} or ${VAR:-default}, $$ for a $")
        return _INVALID if undefined or malformed else _FromEnv(expanded)


# ---------------------------------------------------------------- typed getters


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _kind(value: object) -> str:
    names = {dict: "a mapping", list: "a list", bool: "a boolean", int: "an integer"}
    names |= {float: "a number", type(None): "nothing (null)"}
    if isinstance(value, str):
        return "a string"
    return names.get(type(value), f"a {type(value).__name__}")


def _quote(value: str) -> str:
    return '"' + (value if len(value) <= 40 else value[:37] + "...") + '"'


def _mapping(
    ctx: _Ctx, path: str, value: object, known: frozenset[str] | None
) -> dict[str, object] | None:
    """A mapping with string keys; `known` (if given) lists the keys allowed."""
    if not isinstance(value, dict):
        ctx.add(path, f"expected a mapping, got {_kind(value)}")
        return None
    result: dict[str, object] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            ctx.add(path, f"key {key!r} is not a string")
        elif known is not None and key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            ctx.add(_join(path, key), f"unknown key{hint}")
        else:
            result[key] = item
    return result


def _str(ctx: _Ctx, path: str, value: object, default: str | None = None) -> str | None:
    if value is None or isinstance(value, _Invalid):
        return default
    if isinstance(value, str):
        return str(value)
    ctx.add(path, f"expected a string, got {_kind(value)}")
    return default


def _enum(ctx: _Ctx, path: str, value: object, choices: tuple[str, ...]) -> str:
    """`choices[0]` is the default."""
    s = _str(ctx, path, value, choices[0])
    if s not in choices:
        ctx.add(path, f"expected one of {', '.join(choices)}, got {_quote(str(s))}")
        return choices[0]
    return s


def _bool(ctx: _Ctx, path: str, value: object, default: bool) -> bool:
    if isinstance(value, _FromEnv) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, bool):
        return value
    if value is not None and not isinstance(value, _Invalid):
        ctx.add(path, f"expected true or false, got {_kind(value)}")
    return default


def _number(
    ctx: _Ctx, path: str, value: object, default: float, bounds: tuple[float, float, bool]
) -> float:
    """`bounds` = (lowest, highest, lowest allowed itself)."""
    if value is None or isinstance(value, _Invalid):
        return default
    if isinstance(value, _FromEnv):
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        ctx.add(path, f"expected a number, got {_kind(value)}")
        return default
    low, high, low_ok = bounds
    if not math.isfinite(value) or value > high or value < low or (value == low and not low_ok):
        relation = ">=" if low_ok else ">"
        ctx.add(path, f"expected a number {relation} {low:g} and <= {high:g}, got {value:g}")
        return default
    return float(value)


def _integer(ctx: _Ctx, path: str, value: object, default: int, low: int, high: int) -> int:
    if isinstance(value, _FromEnv) and re.fullmatch(r"\s*-?[0-9]+\s*", value):
        value = int(value)
    if value is None or isinstance(value, _Invalid):
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        ctx.add(path, f"expected an integer, got {_kind(value)}")
        return default
    if not low <= value <= high:
        ctx.add(path, f"expected an integer from {low} to {high}, got {value}")
        return default
    return value


def _local_path(ctx: _Ctx, path: str, value: object, default: Path) -> Path:
    s = _str(ctx, path, value)
    if s == "":
        ctx.add(path, "must not be empty")
    return ctx.config_dir / s if s else default


# ---------------------------------------------------------------- secrets


def _read_secret_file(ctx: _Ctx, path: str, file: Path) -> Secret | None:
    """The file's content without its trailing newline; problems name the file, never
    its content."""
    try:
        with file.open("rb") as f:
            data = f.read(_MAX_SECRET_BYTES + 1)
    except OSError as e:
        ctx.add(path, f"cannot read {file}: {e.strerror or type(e).__name__}")
        return None
    if len(data) > _MAX_SECRET_BYTES:
        ctx.add(path, f"{file} is larger than 64 KiB; is it the right file?")
        return None
    try:
        text = data.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        ctx.add(path, f"{file} is not UTF-8 text")
        return None
    if not text:
        ctx.add(path, f"{file} is empty")
        return None
    return Secret(text)


def _secret(ctx: _Ctx, path: str, m: Mapping[str, object], key: str) -> tuple[Secret | None, str]:
    """The secret `key`, given inline or as `key_file`, and the key path it came from.
    One helper for every secret (token, password, webhook secret_file, url_file, ...)."""
    file_key = f"{key}_file"
    inline, file_value = m.get(key), m.get(file_key)
    if inline is not None and file_value is not None:
        ctx.add(path, f"set {key} or {file_key}, not both")
        return None, ""
    if inline is not None:
        s = _str(ctx, _join(path, key), inline)
        if s == "":
            ctx.add(_join(path, key), "must not be empty")
        return (Secret(s) if s else None), _join(path, key)
    name = _str(ctx, _join(path, file_key), file_value)
    if name is None:
        return None, ""
    if not name:
        ctx.add(_join(path, file_key), "must not be empty")
        return None, ""
    base = ctx.credentials_dir or ctx.config_dir
    return _read_secret_file(ctx, _join(path, file_key), base / name), _join(path, file_key)


def _credentials_token(ctx: _Ctx, path: str, name: str) -> Secret | None:
    """`$CREDENTIALS_DIRECTORY/<cluster>.token`, used when no credentials are configured."""
    if ctx.credentials_dir is None:
        return None
    file = ctx.credentials_dir / f"{name}.token"
    try:
        exists = file.is_file()
    except OSError:
        exists = False
    return _read_secret_file(ctx, path, file) if exists else None


# ---------------------------------------------------------------- clusters

_NAME = re.compile(r"[a-z0-9_-]+")
# As PVE's userid (pve-access-control); the secret goes into a header, so ASCII only.
_USER = re.compile(r"[^\s:/]+@[A-Za-z][A-Za-z0-9._-]*")
_TOKEN = re.compile(_USER.pattern + r"![A-Za-z][A-Za-z0-9._-]*=[\x21-\x7e]+")
_FINGERPRINT = re.compile(r"(?:[0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}|[0-9A-Fa-f]{64}")
_CLUSTER_KEYS = frozenset(
    {"name", "endpoints", "token", "token_file", "username", "password", "password_file"}
    | {"tls", "interval_secs", "timeout_secs", "source_failure_threshold"}
)
_TLS_KEYS = frozenset({"verify", "ca_file", "fingerprint"})


def _clusters(ctx: _Ctx, value: object) -> tuple[ClusterConfig, ...]:
    if value is None or value == []:
        ctx.add("clusters", "at least one cluster is required")
        return ()
    if not isinstance(value, list):
        ctx.add("clusters", f"expected a list of clusters, got {_kind(value)}")
        return ()
    clusters: list[ClusterConfig] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        cluster = _cluster(ctx, f"clusters[{i}]", item)
        if cluster is None:
            continue
        if cluster.name and cluster.name in seen:
            ctx.add(f"clusters[{i}].name", f"duplicate cluster name {_quote(cluster.name)}")
        seen.add(cluster.name)
        clusters.append(cluster)
    return tuple(clusters)


def _cluster(ctx: _Ctx, path: str, value: object) -> ClusterConfig | None:
    m = _mapping(ctx, path, value, _CLUSTER_KEYS)
    if m is None:
        return None
    name = _str(ctx, f"{path}.name", m.get("name"))
    if m.get("name") is None:
        ctx.add(f"{path}.name", "required")
    elif name is not None and not _NAME.fullmatch(name):
        ctx.add(f"{path}.name", "expected lower-case letters, digits, _ and - only")
        name = None
    endpoints = _endpoints(ctx, f"{path}.endpoints", m.get("endpoints"))
    token, username, password = _auth(ctx, path, m, name or "")
    tls = _tls(ctx, f"{path}.tls", m.get("tls"))
    if any(e.startswith("http://") for e in endpoints):
        ctx.warn(f"{path}.endpoints", "plain http: credentials and data travel unencrypted")
    return ClusterConfig(
        name=name or "",
        endpoints=endpoints,
        token=token,
        username=username,
        password=password,
        tls=tls,
        interval_secs=_number(
            ctx, f"{path}.interval_secs", m.get("interval_secs"), 10.0, (1, 86400, True)
        ),
        timeout_secs=_number(
            ctx, f"{path}.timeout_secs", m.get("timeout_secs"), 10.0, (0, 3600, False)
        ),
        source_failure_threshold=_integer(
            ctx, f"{path}.source_failure_threshold", m.get("source_failure_threshold"), 3, 1, 10_000
        ),
    )


def _endpoints(ctx: _Ctx, path: str, value: object) -> tuple[str, ...]:
    if value is None or value == []:
        ctx.add(path, "at least one endpoint URL is required")
        return ()
    if not isinstance(value, list):
        ctx.add(path, f"expected a list of URLs, got {_kind(value)}")
        return ()
    found: list[str] = []
    for i, item in enumerate(value):
        url = _endpoint(ctx, f"{path}[{i}]", item)
        if url in found:
            ctx.add(f"{path}[{i}]", "duplicate endpoint")
        elif url:
            found.append(url)
    return tuple(found)


def _endpoint(ctx: _Ctx, path: str, value: object) -> str | None:
    """ "https://host[:port][/prefix]", port 8006 when https has none, no /api2/json."""
    s = _str(ctx, path, value)
    if s is None:
        return None
    bad = "expected an http(s) URL with a host, e.g. https://pve1.example:8006"
    try:
        parts = urlsplit(s.strip())
        port = parts.port
    except ValueError:
        ctx.add(path, bad)
        return None
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not re.fullmatch(r"[a-z0-9._:%-]+", host):
        ctx.add(path, bad)
        return None
    if parts.username is not None or parts.password is not None:
        ctx.add(path, "must not contain credentials; use token or username+password")
    if parts.query or parts.fragment:
        ctx.add(path, "must not contain a query or fragment")
    if port == 0:
        ctx.add(path, "port 0 is not a port a server listens on")
    prefix = parts.path.rstrip("/").removesuffix("/api2/json").rstrip("/")
    if port is None and parts.scheme == "https":
        port = 8006
    netloc = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{netloc}{f':{port}' if port is not None else ''}{prefix}"


def _auth(
    ctx: _Ctx, path: str, m: Mapping[str, object], name: str
) -> tuple[Secret | None, str | None, Secret | None]:
    token, token_from = _secret(ctx, path, m, "token")
    username = _str(ctx, f"{path}.username", m.get("username"))
    password, _ = _secret(ctx, path, m, "password")
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
        token = _credentials_token(ctx, token_from, name) if name else None
        if token is None:
            ctx.add(path, "set token, token_file or username+password")
    if token is not None and not _TOKEN.fullmatch(token.reveal()):
        ctx.add(token_from, "expected USER@REALM!TOKENID=SECRET")
    if username and not _USER.fullmatch(username):
        ctx.add(f"{path}.username", "expected USER@REALM, e.g. root@pam")
    return token, username, password


def _tls(ctx: _Ctx, path: str, value: object) -> TlsConfig:
    m = {} if value is None else _mapping(ctx, path, value, _TLS_KEYS)
    if m is None:
        return TlsConfig()
    verify = _bool(ctx, f"{path}.verify", m.get("verify"), True)
    ca_file = _ca_file(ctx, f"{path}.ca_file", m.get("ca_file"))
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


def _ca_file(ctx: _Ctx, path: str, value: object) -> Path | None:
    s = _str(ctx, path, value)
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


def _fingerprints(ctx: _Ctx, path: str, value: object) -> tuple[str, ...]:
    if value is None or isinstance(value, _Invalid):
        return ()
    items = [(path, value)] if not isinstance(value, list) else list(enumerate(value))
    if not items:
        ctx.add(path, "expected at least one fingerprint")
    found: list[str] = []
    for where, item in items:
        item_path = where if isinstance(where, str) else f"{path}[{where}]"
        s = _str(ctx, item_path, item)
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


# ---------------------------------------------------------------- store, http, sinks

_ROOT_KEYS = frozenset({"clusters", "store", "http", "sinks"})


def _store(ctx: _Ctx, value: object) -> StoreConfig:
    m = (
        {}
        if value is None
        else _mapping(ctx, "store", value, frozenset({"path", "retention_days"}))
    )
    if m is None:
        return StoreConfig()
    return StoreConfig(
        path=_local_path(ctx, "store.path", m.get("path"), _DEFAULT_STORE_PATH),
        retention_days=_integer(ctx, "store.retention_days", m.get("retention_days"), 30, 1, 36500),
    )


def _http(ctx: _Ctx, value: object) -> HttpConfig:
    m = {} if value is None else _mapping(ctx, "http", value, frozenset({"listen"}))
    if m is None:
        return HttpConfig()
    listen = _str(ctx, "http.listen", m.get("listen"), _DEFAULT_LISTEN) or ""
    if split_host_port(listen.strip()) is None:
        ctx.add("http.listen", "expected HOST:PORT or [IPv6]:PORT, e.g. 127.0.0.1:9886")
        return HttpConfig()
    return HttpConfig(listen=listen.strip())


def _log_options(ctx: _Ctx, path: str, m: Mapping[str, object]) -> dict[str, object]:
    log_path = _str(ctx, f"{path}.path", m.get("path"), "-")
    if log_path == "":
        ctx.add(f"{path}.path", 'must not be empty (use "-" for stdout)')
    elif log_path and log_path != "-":
        log_path = str(ctx.config_dir / log_path)
    return {
        "format": _enum(ctx, f"{path}.format", m.get("format"), ("text", "json")),
        "path": log_path or "-",
        "fsync": _bool(ctx, f"{path}.fsync", m.get("fsync"), False),
    }


@dataclass(frozen=True, slots=True)
class _SinkType:
    keys: frozenset[str]  # the sink's own option keys, beside the common ones
    check: Callable[[_Ctx, str, Mapping[str, object]], dict[str, object]]


# One entry per sink type: a new sink adds its options and their validation here.
_SINK_TYPES: Mapping[str, _SinkType] = MappingProxyType(
    {"log": _SinkType(frozenset({"format", "path", "fsync"}), _log_options)}
)
_SINK_COMMON_KEYS = frozenset({"type"})
_DEFAULT_SINKS = (SinkConfig("console", "log", {"format": "text", "path": "-", "fsync": False}),)


def _sinks(ctx: _Ctx, value: object) -> tuple[SinkConfig, ...]:
    m = None if value is None else _mapping(ctx, "sinks", value, None)
    if not m:
        return _DEFAULT_SINKS
    sinks: list[SinkConfig] = []
    for name, options in m.items():
        path = f"sinks.{name}"
        if not _NAME.fullmatch(name):
            ctx.add(path, "sink names use lower-case letters, digits, _ and - only")
        sink_type = _sink_type(ctx, path, options)
        if sink_type is None:
            continue
        spec = _SINK_TYPES[sink_type]
        checked = _mapping(ctx, path, options, _SINK_COMMON_KEYS | spec.keys) or {}
        sinks.append(SinkConfig(name, sink_type, spec.check(ctx, path, checked)))
    return tuple(sinks)


def _sink_type(ctx: _Ctx, path: str, options: object) -> str | None:
    if not isinstance(options, dict):
        ctx.add(path, f"expected a mapping with a type, got {_kind(options)}")
        return None
    known = ", ".join(sorted(_SINK_TYPES))
    value = options.get("type")
    if value is None:
        ctx.add(f"{path}.type", f"required (one of {known})")
        return None
    sink_type = _str(ctx, f"{path}.type", value)
    if sink_type is not None and sink_type not in _SINK_TYPES:
        ctx.add(f"{path}.type", f"expected one of {known}, got {_quote(sink_type)}")
        return None
    return sink_type


def _root(ctx: _Ctx, doc: object) -> Config:
    if doc is None:
        ctx.add("", "the file is empty; at least clusters is required")
        return Config(clusters=())
    m = _mapping(ctx, "", doc, _ROOT_KEYS)
    if m is None:
        return Config(clusters=())
    return Config(
        clusters=_clusters(ctx, m.get("clusters")),
        store=_store(ctx, m.get("store")),
        http=_http(ctx, m.get("http")),
        sinks=_sinks(ctx, m.get("sinks")),
        warnings=tuple(ctx.warnings),
    )
