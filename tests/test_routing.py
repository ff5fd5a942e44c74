"""Which sinks an event reaches: filters as tables, and the routing of one event."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvewatch.model import Change, Event, ResourceRef, Severity
from pvewatch.routing import SinkFilter, matches, route
from tests.sinks.formats.events import FIRING, NODE_OFFLINE, RESOLVED, T0, events

GUEST = replace(
    FIRING,
    resource=ResourceRef("qemu/150", "qemu", 150, "db1", "pve2", "prod", ("db", "critical")),
)
LXC = replace(GUEST, resource=ResourceRef("lxc/300", "lxc", 300, "ct", "pve1", None, ()))
SOURCE = Event("evt_s", "source.unreachable", T0, "lab", Severity.CRITICAL, "lab unreachable")
MIGRATED = replace(
    GUEST, type="guest.migrated", severity=Severity.INFO, change=Change("node", "pve1", "pve2")
)

F = SinkFilter
CASES: list[tuple[str, SinkFilter, Event, bool]] = [
    ("empty matches all", F(), SOURCE, True),
    ("type glob", F(types=("guest.*",)), GUEST, True),
    ("type glob other", F(types=("guest.*",)), NODE_OFFLINE, False),
    ("exact types", F(types=("node.offline", "node.online")), NODE_OFFLINE, True),
    ("min severity passes", F(min_severity=Severity.WARNING), GUEST, True),
    ("min severity blocks", F(min_severity=Severity.CRITICAL), GUEST, False),
    ("critical passes critical", F(min_severity=Severity.CRITICAL), NODE_OFFLINE, True),
    ("cluster", F(clusters=("prod",)), GUEST, True),
    ("cluster glob", F(clusters=("l*",)), SOURCE, True),
    ("cluster other", F(clusters=("lab",)), GUEST, False),
    ("node", F(nodes=("pve2",)), GUEST, True),
    ("node other", F(nodes=("pve1",)), GUEST, False),
    ("node glob", F(nodes=("pve[23]",)), NODE_OFFLINE, True),
    ("migration away from the node", F(nodes=("pve1",)), MIGRATED, True),
    ("resource criteria need a resource", F(nodes=("*",)), SOURCE, False),
    ("resource type", F(resource_types=("qemu",)), GUEST, True),
    ("resource type other", F(resource_types=("qemu",)), LXC, False),
    ("any tag", F(tags=("db", "web")), GUEST, True),
    ("all tags", F(tags=("db", "web"), tags_match="all"), GUEST, False),
    ("all tags present", F(tags=("db", "crit*"), tags_match="all"), GUEST, True),
    ("tags on an untagged guest", F(tags=("db",)), LXC, False),
    ("pool", F(pools=("prod",)), GUEST, True),
    ("pool on a guest in none", F(pools=("*",)), LXC, False),
    ("vmid", F(vmids=((150, 150),)), GUEST, True),
    ("vmid range", F(vmids=((100, 199), (300, 300))), LXC, True),
    ("vmid outside", F(vmids=((100, 149),)), GUEST, False),
    ("all criteria must hold", F(types=("guest.*",), clusters=("lab",)), GUEST, False),
    ("exclude", F(exclude=F(tags=("db",))), GUEST, False),
    ("exclude other", F(exclude=F(tags=("db",))), LXC, True),
    ("include then exclude", F(types=("guest.*",), exclude=F(vmids=((300, 300),))), LXC, False),
    # A resolution follows its problem: node.online (info) resolves node.offline.
    ("resolution by problem type", F(types=("guest.stopped",)), RESOLVED, True),
    ("resolution by problem severity", F(min_severity=Severity.WARNING), RESOLVED, True),
    ("resolution of an unrelated type", F(types=("node.*",)), RESOLVED, False),
]


@pytest.mark.parametrize(
    ("f", "event", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_matches(f: SinkFilter, event: Event, expected: bool) -> None:
    assert matches(f, event) is expected


@dataclass(frozen=True)
class Sink:
    name: str
    filter: SinkFilter | None = None
    send_resolved: bool = True


SINKS = [
    Sink("all"),
    Sink("critical", SinkFilter(min_severity=Severity.CRITICAL)),
    Sink("no-resolved", send_resolved=False),
    Sink("guests", SinkFilter(types=("guest.*",))),
]


@pytest.mark.parametrize(
    ("event", "names"),
    [
        (FIRING, ["all", "no-resolved", "guests"]),
        (NODE_OFFLINE, ["all", "critical", "no-resolved"]),
        (RESOLVED, ["all", "guests"]),
        (replace(NODE_OFFLINE, suppressed="inhibited"), []),
    ],
)
def test_route(event: Event, names: list[str]) -> None:
    assert route(SINKS, event) == names


@given(event=events)
def test_an_empty_filter_routes_everything_and_excluding_it_routes_nothing(event: Event) -> None:
    assert matches(SinkFilter(), event)
    assert not matches(SinkFilter(exclude=SinkFilter()), event)
    assert not matches(SinkFilter(exclude=SinkFilter(types=("*",))), event)


@given(event=events, types=st.lists(st.sampled_from(["guest.*", "node.*", "*.added"]), min_size=1))
def test_exclude_is_the_complement(event: Event, types: list[str]) -> None:
    inner = SinkFilter(types=tuple(types))
    assert matches(SinkFilter(exclude=inner), event) is not matches(inner, event)


@given(event=events)
def test_route_never_sends_a_suppressed_event(event: Event) -> None:
    names = route([Sink("a"), Sink("b", SinkFilter())], event)
    assert names == ([] if event.suppressed else ["a", "b"])
