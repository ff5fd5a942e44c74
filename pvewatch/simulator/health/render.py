"""proxmox-notify's renderers, ported (proxmox-rs proxmox-notify/src/renderer/ and
endpoints/webhook.rs): the webhook template engine with its `escape`, `json` and
`url-encode` helpers (Handlebars escaping off), and the value renderers the PVE templates
use: `human-bytes`, `duration`, `timestamp` and the plaintext `table`. Pure.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

_EXPRESSION = re.compile(r"\{\{\s*(?:(escape|json|url-encode)\s+)?([A-Za-z0-9_.\-]+)\s*\}\}")
_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_SPAN_UNITS = (  # proxmox-time TimeSpan: a year is 365.25 days, a month 30.44
    ("y", 86_400 * 36525 // 100),
    ("M", 86_400 * 3044 // 100),
    ("w", 7 * 86_400),
    ("d", 86_400),
    ("h", 3_600),
    ("m", 60),
)
# url-encode leaves these alone: it encodes controls, non-ASCII, space and :/?#[]@!$&'()*+,;=%
_URL_SAFE = '-._~"<>\\^`{|}'


class TemplateError(ValueError):
    """A webhook template that PVE would refuse to render (the notification is not sent)."""


def render_template(template: str, data: dict[str, Any]) -> str:
    """One webhook template (url, header value or body) against the notification data."""

    def expand(match: re.Match[str]) -> str:
        helper, path = match.group(1), match.group(2)
        value = lookup(data, path)
        if helper == "json":
            return json_text(value)
        if helper in ("escape", "url-encode"):
            if not isinstance(value, str):
                raise TemplateError(f"{helper}: {path} is not a string")
            return escape(value) if helper == "escape" else quote(value, safe=_URL_SAFE)
        return value_text(value)

    return _EXPRESSION.sub(expand, template)


def lookup(data: Any, path: str) -> Any:
    for part in path.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def escape(text: str) -> str:
    """serde_json's string escaping without the quotes."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


def json_text(value: Any) -> str:
    """serde_json::to_string: compact; objects come out with sorted keys (BTreeMap)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def value_text(value: Any) -> str:
    """How Handlebars writes a value into text: strings as they are, null as nothing."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json_text(value)


def table_value_text(value: Any) -> str:
    """The plaintext table's `value_to_string`: null is written `null`."""
    return value if isinstance(value, str) else json_text(value)


def human_bytes(size: float) -> str:
    """HumanByte::new_binary, displayed with 3 decimals at most: `2.006 GiB`, `0 B`."""
    bits = int(size).bit_length()
    unit = min(max(0, (bits - 1) // 10), len(_BINARY_UNITS) - 1) if bits > 10 else 0
    scaled = size / 1024**unit
    rounded = math.floor(scaled * 1000 + 0.5) / 1000
    number = str(int(rounded)) if rounded == int(rounded) else repr(rounded)
    return f"{number} {_BINARY_UNITS[unit]}"


def duration(seconds: int) -> str:
    """TimeSpan's display of whole seconds: `1m 20s`, `3s`, `2h`, `0s`."""
    parts = []
    rest = max(0, int(seconds))
    for unit, size in _SPAN_UNITS:
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    if rest or not parts:
        parts.append(f"{rest}s")
    return " ".join(parts)


def timestamp(epoch: float) -> str:
    """The `timestamp` helper: `%F %H:%M:%S` in the node's local time (UTC here)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def plaintext_table(
    columns: Sequence[tuple[str, str, str | None]], rows: Sequence[dict[str, Any]]
) -> str:
    """The `table` helper: each column as wide as its widest cell plus 4, left-aligned,
    every line ending in a newline. `columns` holds (label, id, renderer)."""

    def cell(row: dict[str, Any], key: str, renderer: str | None) -> str:
        value = row.get(key)
        if renderer == "duration":
            return duration(int(value or 0))
        if renderer == "human-bytes":
            return human_bytes(float(value or 0))
        return table_value_text(value)

    widths = [
        max([len(label), *(len(cell(r, key, how)) for r in rows)]) + 4
        for label, key, how in columns
    ]
    lines = ["".join(label.ljust(w) for (label, _, _), w in zip(columns, widths, strict=True))]
    for row in rows:
        texts = [cell(row, key, how) for _, key, how in columns]
        lines.append("".join(t.ljust(w) for t, w in zip(texts, widths, strict=True)))
    return "".join(line + "\n" for line in lines)
