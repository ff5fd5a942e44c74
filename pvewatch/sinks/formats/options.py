"""The options of webhook body formats, beside a webhook sink's own keys:

    sinks:
      chat:
        type: webhook
        format: template                 # native (default), cloudevents, alertmanager, ...
        template_file: chat.j2           # template: template or template_file,
        content_type: application/json   #   content_type, group
        # ntfy: topic; alertmanager: external_url

Every problem is reported with its key path, with the rest of the file's problems. A
template is compiled and tried on the sample event here, so a broken one is a config error.
"""

from __future__ import annotations

from collections.abc import Mapping

from pvewatch.config.reading import Ctx, get_bool, get_enum, get_str, join, read_text_file
from pvewatch.sinks.formats.base import OPTION_FORMAT, FormatOptions
from pvewatch.sinks.formats.table import DEFAULT_FORMAT, FORMATS
from pvewatch.sinks.formats.template import template_problem

# The format options a sink type that renders bodies (webhook) accepts beside its own.
FORMAT_KEYS = frozenset({"format", *OPTION_FORMAT})
_MAX_TEMPLATE_BYTES = 256 << 10


def format_options(ctx: Ctx, path: str, m: Mapping[str, object]) -> FormatOptions:
    """The format and its options, with their defaults (for `table.build_formatter`); an
    option of another format than the chosen one is a problem."""
    names = (DEFAULT_FORMAT, *sorted(set(FORMATS) - {DEFAULT_FORMAT}))
    fmt = get_enum(ctx, join(path, "format"), m.get("format"), names)
    for key, owner in OPTION_FORMAT.items():
        if m.get(key) is not None and owner != fmt:
            ctx.add(join(path, key), f"only for format: {owner}")
    if fmt == "template":
        return _template_options(ctx, path, m)
    if fmt == "ntfy":
        return FormatOptions(fmt, topic=get_str(ctx, join(path, "topic"), m.get("topic")))
    if fmt == "alertmanager":
        url = get_str(ctx, join(path, "external_url"), m.get("external_url"), "")
        return FormatOptions(fmt, external_url=url or "")
    return FormatOptions(fmt)


def _template_options(ctx: Ctx, path: str, m: Mapping[str, object]) -> FormatOptions:
    inline, file = m.get("template"), m.get("template_file")
    source, where = None, join(path, "template")
    if inline is not None and file is not None:
        ctx.add(path, "set template or template_file, not both")
    elif inline is not None:
        source = get_str(ctx, where, inline)
    elif file is not None:
        where = join(path, "template_file")
        source = _read_template(ctx, where, get_str(ctx, where, file))
    else:
        ctx.add(where, "required with format: template (or template_file)")
    if source is not None:
        problem = template_problem(source)
        if problem is not None:
            ctx.add(where, problem)
    content_type = get_str(ctx, join(path, "content_type"), m.get("content_type"))
    if content_type is not None and not content_type.strip():
        ctx.add(join(path, "content_type"), "must not be empty")
    return FormatOptions(
        "template",
        template=source or "",
        content_type=content_type or "application/json",
        group=get_bool(ctx, join(path, "group"), m.get("group"), False),
    )


def _read_template(ctx: Ctx, path: str, name: str | None) -> str | None:
    if not name:
        if name == "":
            ctx.add(path, "must not be empty")
        return None
    return read_text_file(ctx, path, ctx.config_dir / name, _MAX_TEMPLATE_BYTES)
