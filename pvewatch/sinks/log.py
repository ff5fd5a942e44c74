"""The log sink: one line per event, to stdout (journald, docker logs) or to a file.

    sinks:
      audit:
        type: log
        format: json          # text (default) | json
        path: events.jsonl    # "-" (default): stdout; relative to the config file
        fsync: false          # fsync after each line

`format: text` is one readable line for people; `format: json` is exactly
`Event.to_dict()` as one compact JSON object per line, for log shippers. `LOG` is the
row of the table of sink types: its options, builder, check and reopen (SIGHUP).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from pvewatch.config.reading import Ctx, get_bool, get_enum, get_str
from pvewatch.config.types import Config, SinkOptions
from pvewatch.errors import SinkError
from pvewatch.model import Event, format_time
from pvewatch.net.probe import Check
from pvewatch.sinks.base import SinkContext, SinkType

FORMATS = ("text", "json")
STDOUT = "-"


@dataclass(frozen=True, slots=True)
class LogOptions(SinkOptions):
    format: str = "text"
    path: str = STDOUT  # absolute (resolved against the config file's directory), or "-"
    fsync: bool = False


def parse_log_options(ctx: Ctx, path: str, m: Mapping[str, object]) -> LogOptions:
    log_path = get_str(ctx, f"{path}.path", m.get("path"), STDOUT)
    if log_path == "":
        ctx.add(f"{path}.path", 'must not be empty (use "-" for stdout)')
    elif log_path and log_path != STDOUT:
        log_path = str(ctx.config_dir / log_path)
    return LogOptions(
        format=get_enum(ctx, f"{path}.format", m.get("format"), FORMATS),
        path=log_path or STDOUT,
        fsync=get_bool(ctx, f"{path}.fsync", m.get("fsync"), False),
    )


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
    def build(cls, name: str, options: LogOptions, context: SinkContext) -> LogSink:
        """The sink of `options` (`parse_log_options` checked them); opens nothing."""
        return cls(name, path=options.path, format=options.format, fsync=options.fsync)

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


async def check_log(options: LogOptions, config: Config) -> list[Check]:
    """`check-config --connect`: stdout, or a file that exists and is writable, or can be
    created."""
    if options.path == STDOUT:
        return [Check("ok", "output", "stdout")]
    file = Path(options.path)
    if file.exists():
        ok = file.is_file() and os.access(file, os.W_OK)
        return [Check("ok" if ok else "fail", "output", f"{file} {_writable(ok)}")]
    parent = file.parent
    ok = parent.is_dir() and os.access(parent, os.W_OK | os.X_OK)
    return [Check("ok" if ok else "fail", "output", f"{file} (new file; {parent} {_writable(ok)})")]


def _writable(ok: bool) -> str:
    return "is writable" if ok else "is not writable by this user"


LOG = SinkType(
    options=LogOptions,
    keys=frozenset({"format", "path", "fsync"}),
    parse=parse_log_options,
    build=LogSink.build,
    check=check_log,
    reopen=LogSink.reopen,
    concurrency=1,  # one line at a time, in order
)
