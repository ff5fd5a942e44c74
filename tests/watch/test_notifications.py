"""Notifications → events (pvewatch.watch.notifications): the mapping table against what
PVE's and PBS's templates render (FACTS-health.md §8, synthetic-webhook-context-*.json),
and a body that is not a notification is a NoticeError, never another exception."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvewatch.model import EVENT_TYPES, Severity
from pvewatch.watch.notifications import (
    MAX_MESSAGE_CHARS,
    Notice,
    NoticeError,
    notice_event,
    read_notice,
)
from tests.simulator.support import HEALTH_CAPTURED

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def context(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((HEALTH_CAPTURED / f"{name}.json").read_text())
    return doc


def body(doc: dict[str, Any]) -> bytes:
    """What the documented body template renders for a template context."""
    keys = ("title", "message", "severity", "timestamp", "fields")
    sent = {k: doc[k] for k in keys if k in doc} | {"timestamp": doc.get("timestamp", 1)}
    return json.dumps({"message": ""} | sent).encode()


@pytest.mark.parametrize(
    ("name", "type_", "severity", "resource"),
    [
        ("pve-vzdump-failed", "backup.failed", "critical", "node/pve1"),
        ("pve-vzdump-failed-single-error", "backup.failed", "critical", "node/pve1"),
        ("pve-vzdump-success", "backup.succeeded", "info", "node/pve1"),
        ("pve-replication-failed", "replication.failed", "warning", "replication/101-0"),
        ("pve-fencing", "node.fenced", "critical", "node/pve3"),
        ("pve-fencing-succeeded", "node.fenced", "critical", "node/pve3"),
        ("pve-package-updates", "node.updates_available", "info", "node/pve1"),
        ("system-mail", "node.system_mail", "warning", "node/pve1"),
        ("pve-test", "pve.notification", "info", None),
    ],
)
def test_pve_templates(name: str, type_: str, severity: str, resource: str | None) -> None:
    doc = context(f"synthetic-webhook-context-{name}")
    event = notice_event(read_notice(body(doc)), source="pve", name="lab", now=NOW)
    assert (event.type, event.severity.value) == (type_, severity)
    assert (event.resource.id if event.resource else None) == resource
    assert event.cluster == "lab"
    assert event.time == NOW
    assert event.details["title"] == " ".join(doc["title"].split())
    assert event.details["fields"] == doc["fields"]
    assert event.summary == f"lab: {' '.join(doc['title'].split())}"


def test_vzdump_failed_guests_and_reasons() -> None:
    doc = context("synthetic-webhook-context-pve-vzdump-failed")
    event = notice_event(read_notice(body(doc)), source="pve", name="lab", now=NOW)
    assert event.details["job_id"] == "backup-a1b2c3d4-e5f6"
    assert event.details["node"] == "pve1"
    assert event.details["failed_guests"] == [101]
    assert event.details["guests"] == [
        {"vmid": 100, "name": "web", "status": "ok"},
        {"vmid": 101, "name": "db", "status": "err", "error": "unable to find VM '101'"},
    ]
    single = context("synthetic-webhook-context-pve-vzdump-failed-single-error")
    event = notice_event(read_notice(body(single)), source="pve", name="lab", now=NOW)
    assert str(event.details["error"]).startswith("could not activate storage 'nfs-bak'")
    assert event.details["job_id"] is None, "a manual run has no job id"


def test_replication_is_the_checks_condition() -> None:
    doc = context("synthetic-webhook-context-pve-replication-failed")
    event = notice_event(read_notice(body(doc)), source="pve", name="lab", now=NOW)
    assert event.condition == "replication.failed:replication/101-0"
    assert event.details["fail_count"] == 3, "PVE's failure count, read from the message"
    assert event.resource is not None
    assert (event.resource.type, event.resource.vmid, event.resource.node) == (
        "replication",
        101,
        "pve1",
    )


@pytest.mark.parametrize("item", context("synthetic-webhook-context-pbs-all")["events"])
def test_pbs_templates(item: dict[str, Any]) -> None:
    severity = item["severity"].split(" ")[0]  # acme: "info (code) / error (docs)"
    doc = {"title": item["title"], "severity": severity, "fields": item["fields"]}
    event = notice_event(read_notice(body(doc)), source="pbs", name="pbs1", now=NOW)
    kind = item["fields"]["type"]
    if kind in ("gc", "prune", "sync", "verify", "tape-backup", "tape-load"):
        assert event.type == ("pbs.job_failed" if severity == "error" else "pbs.job_succeeded")
        assert event.details["job_type"] == kind
        assert event.details["datastore"] == item["fields"].get("datastore")
        assert event.details["job_id"] == item["fields"].get("job-id")
    elif kind == "package-updates":
        assert event.type == "node.updates_available"
    else:
        assert event.type == "pbs.notification"
    assert event.cluster == "pbs1"


@pytest.mark.parametrize(
    ("pve", "ours"),
    [
        ("info", "info"),
        ("notice", "info"),
        ("warning", "warning"),
        ("error", "critical"),
        ("unknown", "warning"),
    ],
)
def test_other_types_keep_the_severity(pve: str, ours: str) -> None:
    notice = Notice("t", "", pve, 1, {"type": "new-thing", "hostname": "pve1"})
    assert notice_event(notice, source="pve", name="lab", now=NOW).severity.value == ours
    assert notice_event(notice, source="pbs", name="b", now=NOW).type == "pbs.notification"


def test_a_pbs_type_from_a_cluster_is_a_pve_notification() -> None:
    notice = Notice("gc", "", "error", 1, {"type": "gc", "hostname": "pve1"})
    assert notice_event(notice, source="pve", name="lab", now=NOW).type == "pve.notification"


def test_catalogue_severities() -> None:
    for type_ in ("backup.failed", "node.fenced"):
        assert EVENT_TYPES[type_].severity is Severity.CRITICAL


def test_the_id_follows_what_was_sent() -> None:
    a = Notice("t", "m", "info", 1, {"type": "package-updates", "hostname": "pve1"})
    same = notice_event(a, source="pve", name="lab", now=NOW)
    later = notice_event(a, source="pve", name="lab", now=NOW.replace(hour=13))
    other = notice_event(Notice("t", "m", "info", 2, a.fields), source="pve", name="lab", now=NOW)
    assert same.id == later.id != other.id


def test_the_message_is_bounded() -> None:
    notice = Notice("t", "x" * (MAX_MESSAGE_CHARS * 3), "unknown", 1, {"type": "system-mail"})
    event = notice_event(notice, source="pve", name="lab", now=NOW)
    assert len(str(event.details["message"])) == MAX_MESSAGE_CHARS


@pytest.mark.parametrize(
    ("sent", "reason"),
    [
        (b"", "not JSON"),
        (b"\xff\xfe", "UTF-8"),
        (b"[1]", "JSON object"),
        (b'{"severity": "info", "timestamp": 1}', "'title'"),
        (b'{"title": " ", "severity": "info", "timestamp": 1}', "'title'"),
        (b'{"title": "t", "severity": "fatal", "timestamp": 1}', "'severity'"),
        (b'{"title": "t", "severity": "info"}', "'timestamp'"),
        (b'{"title": "t", "severity": "info", "timestamp": "1"}', "'timestamp'"),
        (b'{"title": "t", "severity": "info", "timestamp": true}', "'timestamp'"),
        (b'{"title": "t", "severity": "info", "timestamp": 1e300}', "out of range"),
        (b'{"title": "t", "severity": "info", "timestamp": 1, "message": 3}', "'message'"),
        (b'{"title": "t", "severity": "info", "timestamp": 1, "fields": []}', "'fields'"),
        (b'{"title": "t", "severity": "info", "timestamp": 1, "fields": {"a": 1}}', "'fields'"),
        (
            b'{"title": "t", "severity": "info", "timestamp": 1, "fields": {"hostname": "a b"}}',
            "hostname",
        ),
    ],
)
def test_unreadable_bodies(sent: bytes, reason: str) -> None:
    with pytest.raises(NoticeError) as caught:
        read_notice(sent)
    assert reason in str(caught.value)
    assert "\n" not in str(caught.value)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "title": JSON,
            "message": JSON,
            "severity": st.sampled_from(["info", "error", "x"]) | JSON,
            "timestamp": JSON,
            "fields": st.dictionaries(st.text(max_size=10), JSON | st.text(), max_size=4),
        },
    )
)
def test_any_body_is_a_notice_or_a_notice_error(doc: dict[str, Any]) -> None:
    try:
        notice = read_notice(json.dumps(doc).encode())
    except NoticeError:
        return
    event = notice_event(notice, source="pve", name="lab", now=NOW)
    assert event.type in EVENT_TYPES
    json.dumps(event.to_dict())


@given(st.binary(max_size=200))
def test_any_bytes_are_a_notice_or_a_notice_error(sent: bytes) -> None:
    with contextlib.suppress(NoticeError):
        read_notice(sent)


def test_notification_event_types_are_in_the_catalogue() -> None:
    from pvewatch.model import EVENT_TYPES
    from pvewatch.watch.notifications import NOTIFICATION_EVENT_TYPES

    assert set(EVENT_TYPES) >= NOTIFICATION_EVENT_TYPES
