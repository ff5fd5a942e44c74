"""pvewatch's own log: text lines for people and journald, or JSON lines for collectors.

`setup_logging(level, fmt, env)` installs one handler on the root logger (replacing the
one it installed before, so calling it twice is harmless):

- `text`: `2026-11-28 01:02:03,456 WARNING pvewatch: ...`; without the time when
  `$JOURNAL_STREAM` names the stream we write to, because journald stamps every line.
- `json`: `{"time": "2026-11-28T01:02:03.456Z", "level": "warning", "logger": "pvewatch",
  "message": "...", ...}` plus the record's extra fields (`log.info(..., extra={...})`)
  and `exception` with the traceback when there is one.

apscheduler, httpx and httpcore log every job run and request at INFO, which drowns what
matters; they are held at WARNING (or the chosen level, if higher).

Every secret of the config (`secrets=`) is masked as `***` in whatever is written.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from pvewatch.config.logging import LOG_FORMATS

_NOISY = ("apscheduler", "httpx", "httpcore")
# Attributes every LogRecord has; anything else on a record came in through `extra=`.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _iso_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def _iso_time(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


class _Handler(logging.StreamHandler[TextIO]):
    """Marks the handler this module installed, so a second setup replaces it."""


def journald_adds_timestamps(env: Mapping[str, str], stream: TextIO) -> bool:
    """True when `$JOURNAL_STREAM` ("DEVICE:INODE") is the file `stream` writes to:
    systemd connected it to journald, which records the time of every line itself."""
    value = env.get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not device.isdigit() or not inode.isdigit():
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):  # no real file (a StringIO, closed)
        return False
    return (st.st_dev, st.st_ino) == (int(device), int(inode))


def build_formatter(fmt: str, *, timestamps: bool = True) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter()
    if fmt != "text":
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {fmt!r}")
    prefix = "%(asctime)s " if timestamps else ""
    return logging.Formatter(prefix + "%(levelname)s %(name)s: %(message)s")


class RedactingFormatter(logging.Formatter):
    """Masks secret values wherever the inner formatter wrote them (message, extra fields,
    traceback): the last line of defence behind the modules that keep secrets out of
    their messages, for a secret that reaches a log some other way (a server echoing
    another cluster's token in an error page, a library's exception text)."""

    def __init__(self, inner: logging.Formatter, secrets: Iterable[str]) -> None:
        super().__init__()
        self._inner = inner
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        text = self._inner.format(record)
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text


def setup_logging(
    level: str,
    fmt: str = "text",
    env: Mapping[str, str] | None = None,
    *,
    stream: TextIO | None = None,
    secrets: Iterable[str] = (),
) -> None:
    """Send every log record at `level` and above to `stream` (stderr) in `fmt`, with
    each of `secrets` (`pvewatch.secret.secret_values(config)`) masked as `***`."""
    stream = stream or sys.stderr
    env = os.environ if env is None else env
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    handler = _Handler(stream)
    formatter = build_formatter(fmt, timestamps=not journald_adds_timestamps(env, stream))
    handler.setFormatter(RedactingFormatter(formatter, secrets))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in _NOISY:
        logging.getLogger(name).setLevel(max(logging.WARNING, numeric))
