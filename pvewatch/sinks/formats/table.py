"""The table of webhook body formats: `format:` in a webhook sink's options picks the
builder, which gets the sink name and the options `options.format_options` read.
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
from pvewatch.sinks.formats.base import FormatOptions, Formatter
from pvewatch.sinks.formats.cloudevents import CloudEventsFormatter
from pvewatch.sinks.formats.discord import DiscordFormatter
from pvewatch.sinks.formats.gotify import GotifyFormatter
from pvewatch.sinks.formats.native import NativeFormatter
from pvewatch.sinks.formats.ntfy import NtfyFormatter
from pvewatch.sinks.formats.slack import SlackFormatter
from pvewatch.sinks.formats.teams import TeamsFormatter
from pvewatch.sinks.formats.template import TemplateFormatter

FormatBuilder = Callable[[str, FormatOptions], Formatter]

FORMATS: Mapping[str, FormatBuilder] = MappingProxyType(
    {
        "native": lambda _name, _options: NativeFormatter(),
        "cloudevents": lambda _name, _options: CloudEventsFormatter(),
        "alertmanager": lambda name, o: AlertmanagerFormatter(name, o.external_url),
        "slack": lambda _name, _options: SlackFormatter(),
        "discord": lambda _name, _options: DiscordFormatter(),
        "teams": lambda _name, _options: TeamsFormatter(),
        "ntfy": lambda _name, o: NtfyFormatter(o.topic),
        "gotify": lambda _name, _options: GotifyFormatter(),
        "template": lambda _name, o: TemplateFormatter(o.template, o.content_type, o.group),
    }
)
DEFAULT_FORMAT = "native"


def build_formatter(sink_name: str, options: FormatOptions) -> Formatter:
    """The formatter `options.format` names, or ConfigError."""
    builder = FORMATS.get(options.format)
    if builder is None:
        known = ", ".join(sorted(FORMATS))
        raise ConfigError(
            [f"sinks.{sink_name}.format: unknown format {options.format!r} ({known})"]
        )
    return builder(sink_name, options)
