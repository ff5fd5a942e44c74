"""The table of webhook body formats: `format:` in a webhook sink's options picks the
builder, which gets the sink name and the options `pvewatch.config.routing` validated.
Registration is this plain table: one small module per format.

A formatter never raises on an Event: whatever the server sent (odd names, control
characters, unknown event types), it renders a message. Bodies are deterministic (sorted
keys or a fixed order), so golden tests compare bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from pvewatch.errors import ConfigError
from pvewatch.sinks.formats.alertmanager import AlertmanagerFormatter
from pvewatch.sinks.formats.base import Formatter
from pvewatch.sinks.formats.cloudevents import CloudEventsFormatter
from pvewatch.sinks.formats.discord import DiscordFormatter
from pvewatch.sinks.formats.gotify import GotifyFormatter
from pvewatch.sinks.formats.native import NativeFormatter
from pvewatch.sinks.formats.ntfy import NtfyFormatter
from pvewatch.sinks.formats.slack import SlackFormatter
from pvewatch.sinks.formats.teams import TeamsFormatter
from pvewatch.sinks.formats.template import TemplateFormatter

FormatBuilder = Callable[[str, Mapping[str, object]], Formatter]


def _alertmanager(sink_name: str, options: Mapping[str, object]) -> Formatter:
    return AlertmanagerFormatter(sink_name, str(options.get("external_url") or ""))


def _ntfy(sink_name: str, options: Mapping[str, object]) -> Formatter:
    topic = options.get("topic")
    return NtfyFormatter(topic if isinstance(topic, str) else None)


def _template(sink_name: str, options: Mapping[str, object]) -> Formatter:
    return TemplateFormatter(
        str(options.get("template", "")),
        str(options.get("content_type") or "application/json"),
        group=options.get("group") is True,
    )


FORMATS: Mapping[str, FormatBuilder] = MappingProxyType(
    {
        "native": lambda _name, _options: NativeFormatter(),
        "cloudevents": lambda _name, _options: CloudEventsFormatter(),
        "alertmanager": _alertmanager,
        "slack": lambda _name, _options: SlackFormatter(),
        "discord": lambda _name, _options: DiscordFormatter(),
        "teams": lambda _name, _options: TeamsFormatter(),
        "ntfy": _ntfy,
        "gotify": lambda _name, _options: GotifyFormatter(),
        "template": _template,
    }
)
DEFAULT_FORMAT = "native"


def build_formatter(sink_name: str, options: Mapping[str, object]) -> Formatter:
    """The formatter `options["format"]` names (default native), or ConfigError."""
    name = str(options.get("format") or DEFAULT_FORMAT)
    builder = FORMATS.get(name)
    if builder is None:
        known = ", ".join(sorted(FORMATS))
        raise ConfigError([f"sinks.{sink_name}.format: unknown format {name!r} ({known})"])
    return builder(sink_name, options)
