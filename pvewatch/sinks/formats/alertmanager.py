"""`format: alertmanager` — the body Alertmanager's webhook receiver sends (version "4"),
so receivers and bridges written for Alertmanager accept pvewatch directly.

One event is one message with one alert:
- a problem fires: an event with a `condition`, or any warning or critical event;
- an event with `resolves` set is the resolved alert of the same labels, `endsAt` its
  time (the problem's start is not known to it, so `startsAt` is that time too);
- an info event that is neither (guest.started without a problem before it, a rename)
  is not an alert: it renders no message, and counts as delivered.

Labels identify the problem, so firing and resolved share them and their fingerprint:
`alertname` (from the condition's type, `node.offline` → `PveNodeOffline`), `cluster`,
`id` and `type` of the resource, `vmid` of a guest, `node` when it is part of the
resource's identity (nodes, storages, SDN zones; a guest's node changes on migration),
and `severity` from the event catalogue. What may change (name, node of a guest, the
event's own severity, summary, cause) is in the annotations. The fingerprint is
Alertmanager's: FNV-1a 64 over the sorted label names and values, 0xff-separated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pvewatch.model import EVENT_TYPES, Event, Severity, format_time
from pvewatch.sinks.formats.base import Payload
from pvewatch.sinks.formats.common import json_payload

ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt of a firing alert
_GUEST_TYPES = frozenset({"qemu", "lxc"})
_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_MASK = (1 << 64) - 1


class AlertmanagerFormatter:
    name = "alertmanager"
    groups = False

    def __init__(self, receiver: str, external_url: str = "") -> None:
        self.receiver = receiver
        self.external_url = external_url

    def render(self, events: Sequence[Event]) -> list[Payload]:
        return [
            json_payload(body, "application/json", [e.id])
            for e in events
            if (body := self.body(e)) is not None
        ]

    def effective_status(self, status: int, body: bytes) -> int:
        return status

    def body(self, event: Event) -> dict[str, object] | None:
        status = alert_status(event)
        if status is None:
            return None
        labels = alert_labels(event)
        time = format_time(event.time)
        alert = {
            "status": status,
            "labels": labels,
            "annotations": alert_annotations(event),
            "startsAt": time,
            "endsAt": time if status == "resolved" else ZERO_TIME,
            "generatorURL": self.external_url,
            "fingerprint": fingerprint(labels),
        }
        return {
            "version": "4",
            "groupKey": group_key(labels),
            "truncatedAlerts": 0,
            "status": status,
            "receiver": self.receiver,
            "groupLabels": labels,
            "commonLabels": labels,
            "commonAnnotations": alert["annotations"],
            "externalURL": self.external_url,
            "alerts": [alert],
        }


def alert_status(event: Event) -> str | None:
    """ "firing", "resolved", or None for an event that is no alert."""
    if event.resolves:
        return "resolved"
    if event.condition or event.severity in (Severity.WARNING, Severity.CRITICAL):
        return "firing"
    return None


def alert_type(event: Event) -> str:
    """The type of the problem: the condition's (`node.offline:node/pve3`), else the
    event's own."""
    if event.condition:
        return event.condition.partition(":")[0]
    return event.type


def alertname(type_: str) -> str:
    """`node.offline` → `PveNodeOffline`, `guest.status_changed` → `PveGuestStatusChanged`."""
    words = type_.replace("_", ".").replace("-", ".").split(".")
    return "Pve" + "".join(w[:1].upper() + w[1:] for w in words)


def alert_labels(event: Event) -> dict[str, str]:
    type_ = alert_type(event)
    labels = {"alertname": alertname(type_), "cluster": event.cluster}
    known = EVENT_TYPES.get(type_)
    if known is not None:
        labels["severity"] = known.severity.value
    r = event.resource
    if r is not None:
        labels |= {"id": r.id, "type": r.type}
        if r.type in _GUEST_TYPES:
            if r.vmid is not None:
                labels["vmid"] = str(r.vmid)
        elif r.node:
            labels["node"] = r.node
    return labels


def alert_annotations(event: Event) -> dict[str, str]:
    notes = {
        "summary": event.summary,
        "event_id": event.id,
        "event_type": event.type,
        "severity": event.severity.value,
    }
    r = event.resource
    if r is not None:
        notes |= {k: v for k, v in (("name", r.name), ("node", r.node)) if v}
    if event.cause is not None:
        notes["cause"] = event.cause.kind + (f" by {event.cause.user}" if event.cause.user else "")
    if event.condition:
        notes["condition"] = event.condition
    if event.resolves:
        notes["resolves"] = event.resolves
    if event.detected_late:
        notes["detected_late"] = "true"
    return notes


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's `LabelSet.Fingerprint()`, as 16 hex digits."""
    h = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode("utf-8", "backslashreplace") + b"\xff":
                h = ((h ^ byte) * _FNV_PRIME) & _MASK
    return f"{h:016x}"


def group_key(labels: Mapping[str, str]) -> str:
    """`{}:{alertname="PveNodeOffline", cluster="prod", ...}`: the route (none) and the
    group's labels, as Alertmanager writes it; the same for firing and resolved."""
    pairs = ", ".join(f"{k}={_go_quote(labels[k])}" for k in sorted(labels))
    return "{}:{" + pairs + "}"


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r"}
_GO_ESCAPES |= {"\t": "\\t", "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def _go_quote(value: str) -> str:
    """Go's strconv.Quote, with which Alertmanager writes label values in a groupKey
    (`LabelSet.String()`). Python's isprintable is Go's unicode.IsPrint: letters, marks,
    numbers, punctuation, symbols and the ASCII space."""
    out = []
    for c in value:
        code = ord(c)
        if c in _GO_ESCAPES:
            out.append(_GO_ESCAPES[c])
        elif c.isprintable():
            out.append(c)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code < 0xE000:  # not a rune: Go sees invalid UTF-8, U+FFFD
            out.append("\\ufffd")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'
