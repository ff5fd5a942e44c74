"""The Alertmanager format: which events are alerts, and that a resolution carries the
same labels (and fingerprint) as the problem it ends."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from pvewatch.model import Change, Event, ResourceRef, Severity
from pvewatch.sinks.formats.alertmanager import (
    AlertmanagerFormatter,
    alertname,
    fingerprint,
    group_key,
)

from .events import FIRING, NODE_OFFLINE, RESOLVED, T0

AM = AlertmanagerFormatter("ops", "https://pvewatch.example")


def alert(event: Event) -> dict[str, object]:
    (payload,) = AM.render([event])
    (a,) = json.loads(payload.body)["alerts"]
    assert isinstance(a, dict)
    return a


def test_fingerprint_is_alertmanagers() -> None:
    # The test vectors of prometheus/common's LabelsToSignature (same hash).
    assert fingerprint({}) == f"{14695981039346656037:016x}"
    labels = {"name": "garland, briggs", "fear": "love is not enough"}
    assert fingerprint(labels) == f"{5799056148416392346:016x}"


def test_resolution_has_the_labels_and_fingerprint_of_its_problem() -> None:
    firing, resolved = alert(FIRING), alert(RESOLVED)
    assert (firing["status"], resolved["status"]) == ("firing", "resolved")
    assert firing["labels"] == resolved["labels"]
    assert firing["fingerprint"] == resolved["fingerprint"]
    assert (firing["endsAt"], resolved["endsAt"]) == (
        "0001-01-01T00:00:00Z",
        "2026-11-28T01:07:33Z",
    )


def test_a_guest_that_migrated_or_was_renamed_keeps_its_fingerprint() -> None:
    assert FIRING.resource is not None
    moved = replace(RESOLVED, resource=replace(FIRING.resource, node="pve2", name="web-1"))
    assert alert(moved)["fingerprint"] == alert(FIRING)["fingerprint"]
    assert alert(moved)["annotations"]["node"] == "pve2"  # type: ignore[index]


def test_node_labels_include_the_node() -> None:
    assert alert(NODE_OFFLINE)["labels"] == {
        "alertname": "PveNodeOffline", "cluster": "prod", "id": "node/pve3",
        "node": "pve3", "severity": "critical", "type": "node",
    }  # fmt: skip


def info(type_: str, **kw: object) -> Event:
    return Event("evt_i", type_, T0, "prod", Severity.INFO, "x", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("event", "status"),
    [
        (FIRING, "firing"),
        (RESOLVED, "resolved"),
        (NODE_OFFLINE, "firing"),
        (replace(NODE_OFFLINE, condition=None), "firing"),  # warning/critical fires
        (info("guest.renamed"), None),  # an info change is no alert: nothing is sent
        (info("guest.started", resolves="evt_x"), "resolved"),
        (info("task.failed", condition="task.failed:UPID:x"), "firing"),
        (info("future.thing", resource=ResourceRef("x/1", "x")), None),
    ],
)
def test_which_events_are_alerts(event: Event, status: str | None) -> None:
    payloads = AM.render([event])
    if status is None:
        assert payloads == []
    else:
        (payload,) = payloads
        assert json.loads(payload.body)["status"] == status


def test_an_unknown_type_has_no_severity_label_on_either_side() -> None:
    fire = replace(FIRING, type="future.failed", condition="future.failed:x/1")
    end = replace(
        RESOLVED, type="future.succeeded", condition=fire.condition, change=Change("x", 1, 2)
    )
    assert "severity" not in alert(fire)["labels"]  # type: ignore[operator]
    assert alert(fire)["labels"] == alert(end)["labels"]


@pytest.mark.parametrize(
    ("type_", "name"),
    [("node.offline", "PveNodeOffline"), ("guest.status_changed", "PveGuestStatusChanged"),
     ("source.unreachable", "PveSourceUnreachable"), ("", "Pve")],
)  # fmt: skip
def test_alertname(type_: str, name: str) -> None:
    assert alertname(type_) == name


@pytest.mark.parametrize(
    ("value", "quoted"),
    [  # Go's strconv.Quote rules: named escapes, \x below 0x80, \u and \U above; printable
        # (unicode.IsPrint) characters, the apostrophe and non-ASCII ones included, as they are
        ('"pve1\'s VM\t☺"', '"' + '\\"' + "pve1's VM\\t☺" + '\\""'),
        ("web\x01☺", r'"web\x01☺"'),
        ("pve\u00a03", r'"pve\u00a03"'),
        ("\a\b\f\n\r\v\\\x7f\x9f", r'"\a\b\f\n\r\v\\\x7f\u009f"'),
        ("🔥\U000e0001", r'"🔥\U000e0001"'),
    ],
)
def test_group_key_quotes_values_as_go_does(value: str, quoted: str) -> None:
    assert group_key({"node": value}) == "{}:{node=" + quoted + "}"
