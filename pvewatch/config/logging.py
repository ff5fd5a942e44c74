"""The `log:` section: pvewatch's own log (not the events; those go to sinks).

    log:
      level: info      # debug | info | warning | error
      format: text     # text (one line each) | json (one JSON object per line)

`--log-level` and `--log-format` on the command line win over these.
"""

from __future__ import annotations

from dataclasses import dataclass

from pvewatch.config.reading import Ctx, get_enum, get_mapping

LOG_LEVELS = ("info", "debug", "warning", "error")  # the first is the default
LOG_FORMATS = ("text", "json")
_LOG_KEYS = frozenset({"level", "format"})


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: str = LOG_LEVELS[0]
    format: str = LOG_FORMATS[0]


def log_section(ctx: Ctx, value: object) -> LogConfig:
    m = {} if value is None else get_mapping(ctx, "log", value, _LOG_KEYS)
    if m is None:
        return LogConfig()
    return LogConfig(
        level=get_enum(ctx, "log.level", _lower(m.get("level")), LOG_LEVELS),
        format=get_enum(ctx, "log.format", m.get("format"), LOG_FORMATS),
    )


def _lower(value: object) -> object:
    # `INFO` and `Warning` are what people copy from other tools' configs.
    return value.lower() if isinstance(value, str) else value
