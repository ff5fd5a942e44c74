"""The keys every sink has: `filter` and `send_resolved`."""

from __future__ import annotations

from pathlib import Path

import pytest

from pvewatch.model import Severity
from pvewatch.routing import SinkFilter
from pvewatch.sinks.log import LogOptions

from .support import assert_reported, base, load


def with_filter(value: object, **extra: object) -> dict[str, object]:
    return {**base(), "sinks": {"ev": {"type": "log", "filter": value, **extra}}}


def test_a_full_filter_is_read(tmp_path: Path) -> None:
    doc = with_filter(
        {
            "types": ["guest.*", "node.offline"],
            "min_severity": "warning",
            "clusters": ["prod"],
            "nodes": ["pve1", "pve2"],
            "resource_types": ["qemu", "lxc"],
            "tags": ["db", "web"],
            "tags_match": "all",
            "pools": ["prod"],
            "vmids": [100, "200-299", " 300 "],
            "exclude": {"tags": ["lab"], "vmids": ["105"]},
        },
        send_resolved=False,
    )
    (sink,) = load(tmp_path, doc).sinks
    assert sink.filter == SinkFilter(
        types=("guest.*", "node.offline"),
        min_severity=Severity.WARNING,
        clusters=("prod",),
        nodes=("pve1", "pve2"),
        resource_types=("qemu", "lxc"),
        tags=("db", "web"),
        tags_match="all",
        pools=("prod",),
        vmids=((100, 100), (200, 299), (300, 300)),
        exclude=SinkFilter(tags=("lab",), vmids=((105, 105),)),
    )
    assert sink.send_resolved is False
    assert sink.options == LogOptions(format="text", path="-", fsync=False)


def test_defaults_are_no_filter_and_resolved_sent(tmp_path: Path) -> None:
    (sink,) = load(tmp_path, {**base(), "sinks": {"ev": {"type": "log"}}}).sinks
    assert (sink.filter, sink.send_resolved) == (None, True)
    (sink,) = load(tmp_path, with_filter({})).sinks
    assert sink.filter == SinkFilter()


def test_a_type_that_matches_nothing_known_is_a_warning(tmp_path: Path) -> None:
    config = load(tmp_path, with_filter({"types": ["guest.stoped", "future.*"]}))
    assert config.warnings == (
        'sinks.ev.filter.types[0]: "guest.stoped" matches no known event type',
        'sinks.ev.filter.types[1]: "future.*" matches no known event type',
    )


VMIDS = 'sinks.ev.filter.vmids[0]: expected a VMID or a range "100-199"'
FILTER_PROBLEMS: list[tuple[str, object, str]] = [
    ("not a mapping", ["guest.*"], "sinks.ev.filter: expected a mapping, got a list"),
    (
        "unknown key",
        {"type": ["guest.*"]},
        "sinks.ev.filter.type: unknown key (did you mean types?)",
    ),
    ("not a list", {"types": "guest.*"}, "sinks.ev.filter.types: expected a list, got a string"),
    ("empty list", {"nodes": []}, "sinks.ev.filter.nodes: empty: list at least one entry"),
    (
        "entry not a string",
        {"pools": [1]},
        "sinks.ev.filter.pools[0]: expected a string, got an integer",
    ),
    ("empty entry", {"tags": [""]}, "sinks.ev.filter.tags[0]: must not be empty"),
    (
        "bad severity",
        {"min_severity": "error"},
        'sinks.ev.filter.min_severity: expected one of info, warning, critical, got "error"',
    ),
    (
        "bad tags_match",
        {"tags_match": "some"},
        'sinks.ev.filter.tags_match: expected one of any, all, got "some"',
    ),
    ("vmid zero", {"vmids": [0]}, f"{VMIDS}, got 0"),
    ("vmid backwards", {"vmids": ["200-100"]}, f'{VMIDS}, got "200-100"'),
    ("vmid a word", {"vmids": ["web"]}, "sinks.ev.filter.vmids[0]: expected a VMID or a range"),
    ("vmid a boolean", {"vmids": [True]}, f"{VMIDS}, got True"),
    ("vmid a list", {"vmids": [[1]]}, f"{VMIDS}, got a list"),
    (
        "empty exclude",
        {"exclude": {}},
        "sinks.ev.filter.exclude: empty: it would exclude every event",
    ),
    (
        "exclude in exclude",
        {"exclude": {"exclude": {"tags": ["x"]}}},
        "sinks.ev.filter.exclude.exclude: unknown key",
    ),
    (
        "exclude problem",
        {"exclude": {"min_severity": 3}},
        "sinks.ev.filter.exclude.min_severity: expected a string, got an integer",
    ),
]


@pytest.mark.parametrize(
    ("value", "expected"), [c[1:] for c in FILTER_PROBLEMS], ids=[c[0] for c in FILTER_PROBLEMS]
)
def test_filter_problem_names_its_key_path(tmp_path: Path, value: object, expected: str) -> None:
    assert_reported(tmp_path, with_filter(value), expected)


def test_send_resolved_must_be_a_boolean(tmp_path: Path) -> None:
    doc = {**base(), "sinks": {"ev": {"type": "log", "send_resolved": "no"}}}
    assert_reported(tmp_path, doc, "sinks.ev.send_resolved: expected true or false, got a string")
