"""Maintenance and silences: which events are recorded but sent nowhere."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from pvewatch.config.rules import MaintenanceConfig
from pvewatch.model import Event, Severity
from pvewatch.silence import Silence, parse_match
from pvewatch.watch import suppress

from .rows import NOW, Row, ct, node, storage, vm
from .taskrows import rule_input

MAINTENANCE = MaintenanceConfig()


def silence(match: str, *, start: int = -60, end: int = 3600, sid: str = "1") -> Silence:
    return Silence(
        sid, parse_match(match), NOW + timedelta(seconds=start), NOW + timedelta(seconds=end)
    )


def applied(
    old: list[Row],
    new: list[Row],
    silences: list[Silence] | None = None,
    config: MaintenanceConfig = MAINTENANCE,
) -> list[tuple[str, str | None]]:
    inp = rule_input(old, new)
    events = suppress.apply(inp.events, inp.new, config, silences or [], NOW)
    return [(e.type, e.suppressed) for e in events]


STOP = (
    [vm(tags="prod;web", pool="production")],
    [vm(tags="prod;web", pool="production", status="stopped")],
)


@pytest.mark.parametrize(
    ("match", "silenced"),
    [
        ("cluster=demo", True),
        ("cluster=lab", False),
        ("cluster=demo,resource=qemu/100,type=guest.*", True),
        ("resource=qemu/10?", True),
        ("resource=qemu/101", False),
        ("type=guest.stopped", True),
        ("type=node.*", False),
        ("cluster=demo,type!=node.*", True),
        ("node=pve1", True),
        ("vmid=100", True),
        ("name=web*", True),
        ("name=WEB*", False),  # case-sensitive
        ("pool=production", True),
        ("tag=prod", True),
        ("tag=db", False),
        ("severity=warning", True),
        ("severity=critical", False),
        ("cluster=demo,type!=guest.stopped", False),
    ],
)
def test_silence_matching(match: str, silenced: bool) -> None:
    result = applied(*STOP, [silence(match)])
    assert result == [("guest.stopped", "silenced" if silenced else None)]


def test_a_silenced_event_names_its_silence() -> None:
    inp = rule_input(*STOP)
    [event] = suppress.apply(inp.events, inp.new, MAINTENANCE, [silence("vmid=100", sid="7")], NOW)
    assert event.details["silence"] == "7"


@pytest.mark.parametrize(
    ("start", "end", "silenced"),
    [(-60, 60, True), (-60, 0, False), (-120, -60, False), (60, 120, False), (0, 1, True)],
)
def test_only_active_silences_count(start: int, end: int, silenced: bool) -> None:
    result = applied(*STOP, [silence("vmid=100", start=start, end=end)])
    assert result == [("guest.stopped", "silenced" if silenced else None)]


def test_events_without_a_resource_match_cluster_type_severity_only() -> None:
    event = Event("evt_1", "cluster.quorum_lost", NOW, "demo", Severity.CRITICAL, "lost")
    snapshot = rule_input([], []).new
    result = suppress.apply([event], snapshot, MAINTENANCE, [silence("node=pve1")], NOW)
    assert result[0].suppressed is None
    result = suppress.apply([event], snapshot, MAINTENANCE, [silence("type=cluster.*")], NOW)
    assert result[0].suppressed == "silenced"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            [vm(tags="maintenance")],
            [vm(tags="maintenance", status="stopped")],
            [("guest.stopped", "maintenance")],
            id="guest tagged",
        ),
        pytest.param(
            [vm(tags="Maintenance;web")],
            [vm(tags="Maintenance;web", status="stopped")],
            [("guest.stopped", "maintenance")],
            id="tags compare without case",
        ),
        pytest.param(
            [vm(), node(hastate="maintenance")],
            [vm(status="stopped"), node(hastate="maintenance")],
            [("guest.stopped", "maintenance")],
            id="its node in HA maintenance",
        ),
        pytest.param(
            [node(hastate="maintenance")],
            [node(hastate="maintenance", status="offline")],
            [("node.offline", "maintenance")],
            id="the node itself in HA maintenance (reboot)",
        ),
        pytest.param(
            [storage(), node(hastate="maintenance")],
            [storage(status="unknown"), node(hastate="maintenance")],
            [("storage.unavailable", "maintenance")],
            id="a storage of a node in maintenance",
        ),
        pytest.param(
            [vm(), node(hastate="maintenance"), node("pve2")],
            [vm(node="pve2"), node(hastate="maintenance"), node("pve2")],
            [("guest.migrated", "maintenance")],
            id="migrated away from a node in maintenance",
        ),
        pytest.param(
            [vm(), ct(node="pve2"), node(hastate="maintenance")],
            [vm(status="stopped"), ct(node="pve2", status="stopped"), node(hastate="maintenance")],
            [("guest.stopped", "maintenance"), ("guest.stopped", None)],
            id="other nodes are not in maintenance",
        ),
        pytest.param(
            [vm(), node(hastate="online")],
            [vm(status="stopped"), node(hastate="online")],
            [("guest.stopped", None)],
            id="no maintenance",
        ),
        pytest.param(
            [vm(tags="web")],
            [vm(tags="web;maintenance")],
            [("guest.tags_changed", "maintenance")],
            id="entering maintenance by tag",
        ),
        pytest.param(
            [vm(tags="web;maintenance", status="stopped")],
            [vm(tags="web")],
            [("guest.started", None), ("guest.tags_changed", None)],
            id="leaving maintenance",
        ),
    ],
)
def test_maintenance(old: list[Row], new: list[Row], expected: list[tuple[str, str]]) -> None:
    assert sorted(applied(old, new), key=str) == sorted(expected, key=str)


@pytest.mark.parametrize(
    ("config", "tags", "hastate", "suppressed"),
    [
        (MaintenanceConfig(tag=None), "maintenance", "online", None),
        (MaintenanceConfig(tag="upkeep"), "upkeep", "online", "maintenance"),
        (MaintenanceConfig(tag="upkeep"), "maintenance", "online", None),
        (MaintenanceConfig(ha_maintenance=False), "web", "maintenance", None),
        (MaintenanceConfig(tag=None), "web", "maintenance", "maintenance"),
    ],
)
def test_maintenance_settings(
    config: MaintenanceConfig, tags: str, hastate: str, suppressed: str | None
) -> None:
    old = [vm(tags=tags), node(hastate=hastate)]
    new = [vm(tags=tags, status="stopped"), node(hastate=hastate)]
    assert applied(old, new, config=config) == [("guest.stopped", suppressed)]


def test_an_earlier_reason_is_kept() -> None:
    inp = rule_input(*STOP)
    held = [replace(e, suppressed="held") for e in inp.events]
    result = suppress.apply(held, inp.new, MAINTENANCE, [silence("vmid=100")], NOW)
    assert [e.suppressed for e in result] == ["held"]
