"""PVE's and PBS's own notifications (their webhook target) → events. Pure.

`read_notice` reads the body pvewatch documents for the webhook target:

    {"title": "{{ escape title }}", "message": "{{ escape message }}",
     "severity": "{{ severity }}", "timestamp": {{ timestamp }}, "fields": {{ json fields }}}

and `notice_event` maps it on `fields.type` and `severity` (FACTS-health.md §8):

| source | `type` | event |
|---|---|---|
| PVE | `vzdump`, severity error | `backup.failed` (the failed guests parsed from the message) |
| PVE | `vzdump`, otherwise | `backup.succeeded` |
| PVE | `replication` | `replication.failed` (condition `replication.failed:replication/<job>`) |
| PVE | `fencing` | `node.fenced` |
| both | `package-updates` | `node.updates_available` |
| both | `system-mail` | `node.system_mail` (the title as summary) |
| PBS | `gc`, `prune`, `sync`, `verify`, `tape-backup`, `tape-load` | `pbs.job_failed` /
  `pbs.job_succeeded` |
| PVE / PBS | anything else | `pve.notification` / `pbs.notification`, severity mapped |

Every event keeps PVE's `title`, `severity`, `timestamp` (`sent_at`) and `fields` in its
details, and the message bounded to `MAX_MESSAGE_CHARS`. Its id is derived from what was
sent, so the same notification posted twice is one event.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pvewatch.model import (
    EVENT_TYPES,
    Event,
    JSONValue,
    ResourceRef,
    Severity,
    event_id,
    format_time,
)

Source = Literal["pve", "pbs"]

# The body an operator gives PVE's webhook target (`pvewatch notify-setup` prints it).
BODY_TEMPLATE = (
    '{"title": "{{ escape title }}", "message": "{{ escape message }}", '
    '"severity": "{{ severity }}", "timestamp": {{ timestamp }}, "fields": {{ json fields }}}'
)

MAX_MESSAGE_CHARS = 4000
MAX_TITLE_CHARS = 500
PBS_JOBS = frozenset({"gc", "prune", "sync", "verify", "tape-backup", "tape-load"})
# Every type `notice_event` can give (replication.failed is the replication check's too).
NOTIFICATION_EVENT_TYPES = frozenset(
    {"backup.failed", "backup.succeeded", "replication.failed", "node.fenced"}
    | {"node.updates_available", "node.system_mail", "pbs.job_failed", "pbs.job_succeeded"}
    | {"pve.notification", "pbs.notification"}
)
# PVE's severities (proxmox-notify) → ours, for the types without a row of their own.
SEVERITIES: Mapping[str, Severity] = {
    "info": Severity.INFO,
    "notice": Severity.INFO,
    "warning": Severity.WARNING,
    "error": Severity.CRITICAL,
    "unknown": Severity.WARNING,
}
_FIELD_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_NODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,62}")
# A row of vzdump's guest table: VMID, name, status (ok, err), ...
_GUEST_ROW = re.compile(r"^(\d{1,9})\s+(\S+)\s+(ok|err|todo)\b", re.MULTILINE)
_GUEST_ERROR = re.compile(r"ERROR: Backup of VM (\d{1,9}) failed - ([^\n]{0,300})")
_FAIL_COUNT = re.compile(r"^Failure count: (\d{1,9})$", re.MULTILINE)
_JOB_ERROR = re.compile(r": backup failed: (.{1,300})$")


class NoticeError(ValueError):
    """A body that is not a notification: the one-line reason (no content quoted)."""


@dataclass(frozen=True, slots=True)
class Notice:
    """One notification as PVE or PBS sent it."""

    title: str
    message: str
    severity: str
    timestamp: int
    fields: Mapping[str, str]

    @property
    def type(self) -> str:
        return self.fields.get("type", "")


def read_notice(body: bytes) -> Notice:
    """The notification in `body`, or NoticeError saying what is wrong with it."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise NoticeError("the body is not UTF-8") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise NoticeError(f"the body is not JSON (line {e.lineno} column {e.colno})") from None
    except ValueError:
        raise NoticeError("the body is not JSON") from None
    if not isinstance(doc, dict):
        raise NoticeError("expected a JSON object with title, severity, timestamp and fields")
    title, severity = doc.get("title"), doc.get("severity")
    if not isinstance(title, str) or not title.strip():
        raise NoticeError("'title' must be a non-empty string")
    if not isinstance(severity, str) or severity not in SEVERITIES:
        raise NoticeError(f"'severity' must be one of {', '.join(SEVERITIES)}")
    message = doc.get("message", "")
    if not isinstance(message, str):
        raise NoticeError("'message' must be a string")
    stamp = doc.get("timestamp")
    if isinstance(stamp, bool) or not isinstance(stamp, int | float) or not math.isfinite(stamp):
        raise NoticeError("'timestamp' must be a number (epoch seconds)")
    if not 0 <= stamp < 2**33:
        raise NoticeError("'timestamp' is out of range")
    fields = doc.get("fields", {})
    if not isinstance(fields, dict):
        raise NoticeError("'fields' must be an object")
    for name, value in fields.items():
        if not _FIELD_NAME.fullmatch(name) or not isinstance(value, str) or len(value) > 500:
            raise NoticeError("'fields' must map short names to strings of at most 500 chars")
    host = fields.get("hostname")
    if host is not None and not _NODE.fullmatch(host):
        raise NoticeError("'fields.hostname' is not a host name")
    return Notice(" ".join(title.split())[:MAX_TITLE_CHARS], message, severity, int(stamp), fields)


def notice_event(notice: Notice, *, source: Source, name: str, now: datetime) -> Event:
    """The event a notification from `source` (the cluster or backup server `name`) is."""
    kind, host = notice.type, notice.fields.get("hostname")
    details: dict[str, JSONValue] = {
        "source": source,
        "notification_type": kind or None,
        "title": notice.title,
        "pve_severity": notice.severity,
        "sent_at": format_time(datetime.fromtimestamp(notice.timestamp, UTC)),
        "fields": dict(notice.fields),
        "message": _bounded(notice.message),
    }
    if host:
        details["node"] = host
    node_ref = ResourceRef(f"node/{host}", "node", node=host) if host else None
    resource, condition = node_ref, None
    if source == "pve" and kind == "vzdump":
        failed = notice.severity == "error"
        type_ = "backup.failed" if failed else "backup.succeeded"
        details.update(_vzdump_details(notice))
    elif source == "pve" and kind == "replication":
        type_ = "replication.failed"
        job = notice.fields.get("job-id", "")
        guest = job.partition("-")[0]
        vmid = int(guest) if guest.isdigit() else None
        resource = ResourceRef(f"replication/{job}", "replication", vmid=vmid, node=host)
        condition = f"replication.failed:{resource.id}"
        details["job_id"] = job
        count = _FAIL_COUNT.search(notice.message)
        if count:
            details["fail_count"] = int(count.group(1))
    elif source == "pve" and kind == "fencing":
        type_ = "node.fenced"
        details["fenced"] = notice.title.startswith("Successfully")
    elif kind == "package-updates":
        type_ = "node.updates_available"
    elif kind == "system-mail":
        type_ = "node.system_mail"
    elif source == "pbs" and kind in PBS_JOBS:
        type_ = "pbs.job_failed" if notice.severity == "error" else "pbs.job_succeeded"
        store = notice.fields.get("datastore")
        details |= {"job_type": kind, "datastore": store, "job_id": notice.fields.get("job-id")}
        if store:
            resource = ResourceRef(f"datastore/{store}", "datastore", node=host)
    else:
        type_ = f"{source}.notification"
    severity = EVENT_TYPES[type_].severity
    if type_ == f"{source}.notification":
        severity = SEVERITIES[notice.severity]
    subject = json.dumps([notice.title, dict(notice.fields), notice.message], sort_keys=True)
    sent = datetime.fromtimestamp(notice.timestamp, UTC)
    return Event(
        id=event_id(name, type_, subject, None, sent),
        type=type_,
        time=now,
        cluster=name,
        severity=severity,
        summary=f"{name}: {notice.title}",
        resource=resource,
        condition=condition,
        details=details,
    )


def _vzdump_details(notice: Notice) -> dict[str, JSONValue]:
    """The job, the guests of the message's table and the reasons the failed ones give."""
    reasons = {int(v): why.strip() for v, why in _GUEST_ERROR.findall(notice.message)}
    guests: list[JSONValue] = []
    failed: list[JSONValue] = []
    for vmid_text, name, status in _GUEST_ROW.findall(notice.message):
        vmid = int(vmid_text)
        guest: dict[str, JSONValue] = {"vmid": vmid, "name": name, "status": status}
        if vmid in reasons:
            guest["error"] = reasons[vmid]
        guests.append(guest)
        if status != "ok":
            failed.append(vmid)
    found: dict[str, JSONValue] = {
        "job_id": notice.fields.get("job-id"),
        "guests": guests,
        "failed_guests": failed,
    }
    job_error = _JOB_ERROR.search(notice.title)
    if job_error and notice.severity == "error":
        found["error"] = job_error.group(1)
    return found


def _bounded(text: str) -> str:
    if len(text) <= MAX_MESSAGE_CHARS:
        return text
    return text[: MAX_MESSAGE_CHARS - 14] + "\n[… truncated]"
