"""The log sink: one line per event, to stdout (journald, docker logs) or to a file.

`format: text` is one readable line for people; `format: json` is exactly
`Event.to_dict()` as one compact JSON object per line, for log shippers.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from pvewatch.config.types import SinkConfig
from pvewatch.errors import SinkError
from pvewatch.model import Event, format_time

FORMATS = ("text", "json")
STDOUT = "-"


def format_text(event: Event) -> str:
    """`<time> <SEVERITY> <cluster> <type> <resource>: <summary>[ (late)][ cause=...]`."""
    head = f"{format_time(event.time)} {event.severity.value.upper()} {event.cluster} {event.type}"
    if event.resource is not None:
        head += f" {event.resource.id}"
    line = f"{head}: {event.summary}"
    if event.detected_late:
        line += " (late)"
    if event.cause is not None:
        line += f" cause={event.cause.kind}"
        if event.cause.user:
            line += f" user={event.cause.user}"
        if event.cause.task:
            line += f" task={event.cause.task}"
    return escape_controls(line)


def format_json(event: Event) -> str:
    # ASCII escapes keep the line valid whatever the stream's encoding; default=str keeps
    # an odd value in `details` from losing the whole event.
    return json.dumps(event.to_dict(), separators=(",", ":"), ensure_ascii=True, default=str)


def escape_controls(text: str) -> str:
    """Escape newlines and other control characters: names come from the PVE server,
    and one event must stay one line (no forged log lines)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


class LogSink:
    """Writes each event as one line. Files are opened lazily, in append mode, line
    buffered and flushed per event; `reopen()` lets log rotation take effect."""

    groups = False

    def __init__(
        self,
        name: str,
        *,
        path: str = STDOUT,
        format: str = "text",
        fsync: bool = False,
        stream: TextIO | None = None,
    ) -> None:
        if format not in FORMATS:
            raise ValueError(f"log sink {name!r}: unknown format {format!r}")
        self.name = name
        self.path = path
        self.format = format
        self.fsync = fsync
        self._stream = stream  # injected stdout replacement (tests); None = sys.stdout
        self._file: TextIO | None = None
        self._closed = False

    @classmethod
    def from_config(cls, cfg: SinkConfig) -> LogSink:
        """Build from options that `pvewatch.config` has already validated (it is the one
        place that checks them, reporting every problem with its key path), so this only
        reads them. Missing options take their defaults, for configs built in code."""
        opts = cfg.options
        return cls(
            cfg.name,
            path=str(opts.get("path", STDOUT)),
            format=str(opts.get("format", "text")),
            fsync=opts.get("fsync") is True,
        )

    async def send(self, events: Sequence[Event]) -> None:
        if self._closed:
            raise SinkError(f"log sink {self.name!r} is closed", retryable=False)
        for event in events:
            self._write(self._format(event) + "\n")

    def _write(self, line: str) -> None:
        if self.path == STDOUT:
            self._write_stdout(line)
        else:
            self._write_file(line)

    def reopen(self) -> None:
        """Close the file so the next event opens the path again (after logrotate)."""
        self._close_file()

    async def aclose(self) -> None:
        self._closed = True
        self._close_file()

    def _format(self, event: Event) -> str:
        try:
            return format_json(event) if self.format == "json" else format_text(event)
        except Exception as e:
            # A malformed event is a bug upstream; retrying cannot fix it.
            raise SinkError(
                f"log sink {self.name!r}: cannot format event {event.id!r}: {type(e).__name__}",
                retryable=False,
            ) from e

    def _write_stdout(self, line: str) -> None:
        stream = self._stream if self._stream is not None else sys.stdout
        try:
            try:
                stream.write(line)
            except UnicodeEncodeError:
                # A non-UTF-8 locale must not cost us the event: write it escaped.
                stream.write(line.encode("ascii", "backslashreplace").decode("ascii"))
            stream.flush()
        except (OSError, ValueError) as e:
            raise SinkError(
                f"log sink {self.name!r}: cannot write to stdout: {_reason(e)}",
                retryable=isinstance(e, OSError),
            ) from e

    def _write_file(self, line: str) -> None:
        try:
            if self._file is None:
                # backslashreplace: a lone surrogate from the server must not lose the event.
                self._file = open(  # noqa: SIM115
                    self.path, "a", buffering=1, encoding="utf-8", errors="backslashreplace"
                )
            self._file.write(line)
            self._file.flush()
            if self.fsync:
                os.fsync(self._file.fileno())
        except (OSError, ValueError) as e:
            # Start from a fresh open next time: the disk may be back, the path recreated.
            self._close_file()
            raise SinkError(
                f"log sink {self.name!r}: cannot write {self.path}: {_reason(e)}",
                retryable=True,
            ) from e

    def _close_file(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            # The data is lost either way; the next open reports the problem.
            with contextlib.suppress(OSError):
                f.close()


def _reason(e: Exception) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return type(e).__name__
