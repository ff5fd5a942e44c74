"""Reading watch.yaml: the YAML document, `${VAR}` expansion, typed getters and secrets,
shared by every section module (clusters, service, sinks).

Every getter takes the `Ctx`, the key path it reports under and the raw value; it adds a
problem to the context instead of raising, and returns a default, so one pass finds every
problem. A value whose `${...}` expansion failed is an `Invalid` and is not reported again.

Over 350 lines: every getter the section modules read their keys with, in one place,
so that each key is read, and each problem said, the same way.
"""

from __future__ import annotations

import contextlib
import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from pvewatch.config.values import Bounds, out_of_bounds, out_of_range
from pvewatch.errors import ConfigError
from pvewatch.secret import Secret

# Cluster and sink names: they appear in metrics labels, file names and key paths.
NAME = re.compile(r"[a-z0-9_-]+")

_MAX_CONFIG_BYTES = 1 << 20
_MAX_SECRET_BYTES = 64 << 10
_MAX_NODES = 100_000  # alias bombs: a few lines of YAML can reference millions of nodes
_MAX_DEPTH = 64
_ROOT = "(top level)"


class Ctx:
    """Where relative paths resolve, and what was found wrong so far."""

    def __init__(self, config_dir: Path, credentials_dir: Path | None) -> None:
        self.config_dir = config_dir
        self.credentials_dir = credentials_dir
        self.problems: list[str] = []
        self.warnings: list[str] = []
        # Key paths of secrets written out in the file itself (not *_file, not ${VAR}):
        # load_config warns when others can read the file.
        self.inline_secrets: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(f"{path or _ROOT}: {message}")

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"{path}: {message}")

    def inline_secret(self, path: str, value: object) -> None:
        """Note that the secret at `path` is written in the file (a value that came from
        `${VAR}` is not: the environment holds it)."""
        if isinstance(value, str) and not isinstance(value, _FromEnv) and value:
            self.inline_secrets.append(path)


class Invalid:
    """Stands for a value whose expansion already failed, so it is not reported twice."""


_INVALID = Invalid()


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


def read_document(path: Path) -> object:
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
    def __init__(self, env: Mapping[str, str], ctx: Ctx) -> None:
        self.env = env
        self.ctx = ctx
        self.nodes = 0

    def tree(self, value: object, path: str, depth: int) -> object:
        self.nodes += 1
        if self.nodes > _MAX_NODES or depth > _MAX_DEPTH:
            raise ConfigError([f"{path or _ROOT}: document too large or nested too deeply"])
        if isinstance(value, dict):
            return {k: self.tree(v, join(path, k), depth + 1) for k, v in value.items()}
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


def expand_env(ctx: Ctx, env: Mapping[str, str], doc: object, at: str = "") -> object:
    """`doc` (the part of the document at key path `at`) with `${VAR}` references in its
    strings replaced from `env`."""
    return _Expander(env, ctx).tree(doc, at, 0 if not at else 1)


# ---------------------------------------------------------------- typed getters


def join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def kind(value: object) -> str:
    names = {dict: "a mapping", list: "a list", bool: "a boolean", int: "an integer"}
    names |= {float: "a number", type(None): "nothing (null)"}
    if isinstance(value, str):
        return "a string"
    return names.get(type(value), f"a {type(value).__name__}")


def quote(value: str) -> str:
    return '"' + (value if len(value) <= 40 else value[:37] + "...") + '"'


def get_mapping(
    ctx: Ctx, path: str, value: object, known: frozenset[str] | None
) -> dict[str, object] | None:
    """A mapping with string keys; `known` (if given) lists the keys allowed."""
    if not isinstance(value, dict):
        ctx.add(path, f"expected a mapping, got {kind(value)}")
        return None
    result: dict[str, object] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            ctx.add(path, f"key {key!r} is not a string")
        elif known is not None and key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            ctx.add(join(path, key), f"unknown key{hint}")
        else:
            result[key] = item
    return result


def get_str(ctx: Ctx, path: str, value: object, default: str | None = None) -> str | None:
    if value is None or isinstance(value, Invalid):
        return default
    if isinstance(value, str):
        return str(value)
    ctx.add(path, f"expected a string, got {kind(value)}")
    return default


def get_enum(ctx: Ctx, path: str, value: object, choices: tuple[str, ...]) -> str:
    """`choices[0]` is the default."""
    s = get_str(ctx, path, value, choices[0])
    if s not in choices:
        ctx.add(path, f"expected one of {', '.join(choices)}, got {quote(str(s))}")
        return choices[0]
    return s


def get_bool(ctx: Ctx, path: str, value: object, default: bool) -> bool:
    if isinstance(value, _FromEnv) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, bool):
        return value
    if value is not None and not isinstance(value, Invalid):
        ctx.add(path, f"expected true or false, got {kind(value)}")
    return default


def get_number(ctx: Ctx, path: str, value: object, default: float, bounds: Bounds) -> float:
    """`bounds` = (lowest, highest, lowest allowed itself)."""
    if value is None or isinstance(value, Invalid):
        return default
    if isinstance(value, _FromEnv):
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        ctx.add(path, f"expected a number, got {kind(value)}")
        return default
    problem = out_of_bounds(value, bounds)
    if problem is not None:
        ctx.add(path, problem)
        return default
    return float(value)


def get_integer(ctx: Ctx, path: str, value: object, default: int, low: int, high: int) -> int:
    if isinstance(value, _FromEnv) and re.fullmatch(r"\s*-?[0-9]+\s*", value):
        value = int(value)
    if value is None or isinstance(value, Invalid):
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        ctx.add(path, f"expected an integer, got {kind(value)}")
        return default
    problem = out_of_range(value, low, high)
    if problem is not None:
        ctx.add(path, problem)
        return default
    return value


def get_path(ctx: Ctx, path: str, value: object, default: Path) -> Path:
    s = get_str(ctx, path, value)
    if s == "":
        ctx.add(path, "must not be empty")
    return ctx.config_dir / s if s else default


# ---------------------------------------------------------------- secrets


def read_text_file(ctx: Ctx, path: str, file: Path, max_bytes: int) -> str | None:
    """A small UTF-8 file the config points to (a secret, a template); problems name the
    file, never its content."""
    try:
        with file.open("rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        ctx.add(path, f"cannot read {file}: {e.strerror or type(e).__name__}")
        return None
    if len(data) > max_bytes:
        ctx.add(path, f"{file} is larger than {max_bytes >> 10} KiB; is it the right file?")
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        ctx.add(path, f"{file} is not UTF-8 text")
        return None


def _read_secret_file(ctx: Ctx, path: str, file: Path) -> Secret | None:
    """The file's content without its trailing newline."""
    content = read_text_file(ctx, path, file, _MAX_SECRET_BYTES)
    if content is None:
        return None
    text = content.rstrip("\r\n")
    if not text:
        ctx.add(path, f"{file} is empty")
        return None
    return Secret(text)


def get_secret(
    ctx: Ctx, path: str, m: Mapping[str, object], key: str, *, sensitive: bool = True
) -> tuple[Secret | None, str]:
    """The secret `key`, given inline or as `key_file`, and the key path it came from.
    One helper for every secret (token, password, webhook secret_file, url_file, ...).
    `sensitive=False`: masked like any secret, but not worth a warning when written in a
    file others can read (a header such as X-Team; the caller decides)."""
    file_key = f"{key}_file"
    inline, file_value = m.get(key), m.get(file_key)
    if inline is not None and file_value is not None:
        ctx.add(path, f"set {key} or {file_key}, not both")
        return None, ""
    if inline is not None:
        s = get_str(ctx, join(path, key), inline)
        if s == "":
            ctx.add(join(path, key), "must not be empty")
        if sensitive:
            ctx.inline_secret(join(path, key), inline)
        return (Secret(s) if s else None), join(path, key)
    if file_value is None:
        return None, ""
    return read_secret_file(ctx, join(path, file_key), file_value), join(path, file_key)


def read_secret_file(ctx: Ctx, path: str, value: object) -> Secret | None:
    """The secret in the file `value` names (the value of a `*_file` key at `path`);
    relative to $CREDENTIALS_DIRECTORY when set, else to the config file."""
    name = get_str(ctx, path, value)
    if name is None:
        return None
    if not name:
        ctx.add(path, "must not be empty")
        return None
    base = ctx.credentials_dir or ctx.config_dir
    return _read_secret_file(ctx, path, base / name)


def credentials_token(ctx: Ctx, path: str, name: str) -> Secret | None:
    """`$CREDENTIALS_DIRECTORY/<cluster>.token`, used when no credentials are configured."""
    if ctx.credentials_dir is None:
        return None
    file = ctx.credentials_dir / f"{name}.token"
    try:
        exists = file.is_file()
    except OSError:
        exists = False
    return _read_secret_file(ctx, path, file) if exists else None
