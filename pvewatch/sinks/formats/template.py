"""`format: template` — a user's Jinja2 template renders the body.

The template runs in Jinja2's sandbox with StrictUndefined (a typo is an error, not an
empty string), given `event` (the native event object, `Event.to_dict()`) and `events`
(every event of the message: one, or a burst with `group: true`). jinja2 is imported
here only, and only when a template is compiled: importing the formats (the pure core)
loads no template engine. A template that fails on some event (say
`event.resource.name` on a source.unreachable) does not lose the event: the message falls
back to the native body, with the reason in the `pvewatch-template-error` header.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from pvewatch.model import Event
from pvewatch.sinks.formats import native
from pvewatch.sinks.formats.base import Payload
from pvewatch.sinks.formats.common import dumps
from pvewatch.sinks.formats.sample import sample_event

ERROR_HEADER = "pvewatch-template-error"
_MAX_ERROR_CHARS = 200


Render = Callable[..., str]


def compile_template(source: str) -> Render:
    """The render function of `source`, compiled in Jinja2's sandbox; raises
    jinja2.TemplateSyntaxError."""
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    environment = SandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return environment.from_string(source).render


def template_problem(source: str) -> str | None:
    """None when `source` compiles and renders the sample event, else what is wrong
    (`line 3: unexpected '}'`), for the config check."""
    import jinja2

    try:
        render = compile_template(source)
    except jinja2.TemplateSyntaxError as e:
        return f"line {e.lineno}: {e.message}"
    event: dict[str, Any] = sample_event(datetime(2026, 1, 1, tzinfo=UTC)).to_dict()
    try:
        render(event=event, events=[event])
    except Exception as e:  # whatever the user wrote: report it, do not crash the check
        return f"does not render a sample event: {_reason(e)}"
    return None


class TemplateFormatter:
    name = "template"

    def __init__(self, source: str, content_type: str, group: bool = False) -> None:
        self._fill = compile_template(source)
        self.content_type = content_type
        self.groups = group

    def render(self, events: Sequence[Event]) -> list[Payload]:
        if not events:
            return []
        if self.groups:
            return self._render(list(events))
        return [p for e in events for p in self._render([e])]

    def effective_status(self, status: int, body: bytes) -> int:
        return status

    def _render(self, events: list[Event]) -> list[Payload]:
        dicts = [e.to_dict() for e in events]
        try:
            text = self._fill(event=dicts[0], events=dicts)
        except Exception as e:  # a user template may fail on an event it did not foresee
            headers = {ERROR_HEADER: _reason(e)}
            return [
                Payload(dumps(native.body(ev)), "application/json", headers, (ev.id,))
                for ev in events
            ]
        body = text.encode("utf-8", "backslashreplace")
        return [Payload(body, self.content_type, {}, tuple(e.id for e in events))]


def _reason(e: Exception) -> str:
    """One header-safe line: the error class and its message, shortened."""
    text = f"{type(e).__name__}: {e}"
    text = "".join(c if c.isprintable() and c.isascii() else "?" for c in text)
    return text[:_MAX_ERROR_CHARS]
