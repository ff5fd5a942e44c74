"""The PVE API misbehaves, one outage after another, through the daemon's own wiring.

Every outage must give exactly one `source.unreachable` and one `source.recovered`, no
guest or node event of its own making, and the one real change made during it (a guest
stopped or started) reported once, after it. See also tests/e2e/test_watch.py (the same
promise over `pvewatch run` with five fault kinds) and tests/pve/ (each error alone).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import simulator
from tests.faults.figures import Figures
from tests.faults.rig import TIMEOUT_SECS, Rig, body, fault, fault_config, status, watching

Rows = list[dict[str, Any]]


def _without(rows: Rows, kinds: set[str], *fields: str) -> str:
    """The real answer with `fields` taken out of every row of the given types."""
    changed = [
        {k: v for k, v in r.items() if r.get("type") not in kinds or k not in fields} for r in rows
    ]
    return json.dumps({"data": changed})


def _only(rows: Rows, kinds: set[str]) -> str:
    return json.dumps({"data": [r for r in rows if r.get("type") in kinds]})


@dataclass(frozen=True)
class Outage:
    name: str
    kind: str | None  # the error class the source.* events must name; None: mixed
    faults: Callable[[Rows], list[dict[str, Any]]]


OUTAGES = [
    Outage("500", "unreachable", lambda rows: [status(500)]),
    Outage("595 no route to host", "unreachable", lambda rows: [status(595)]),
    Outage("502 html from a proxy", "unreachable", lambda rows: [body("<h1>502</h1>", 3, 502)]),
    Outage("401 token revoked then restored", "auth", lambda rows: [status(401)]),
    Outage("403 privilege taken away", "auth", lambda rows: [status(403)]),
    Outage("timeout", "timeout", lambda rows: [fault("delay", 2, seconds=TIMEOUT_SECS * 3)]),
    Outage("connection reset", "unreachable", lambda rows: [fault("reset")]),
    Outage("html and truncated bodies", "bad_response", lambda rows: [fault("garbage", 4)]),
    Outage("empty data list", "bad_response", lambda rows: [body('{"data": []}', 3)]),
    Outage(
        "wrong types",
        "bad_response",
        lambda rows: [
            body(text)
            for text in (
                '{"data": null}',
                '{"data": {}}',
                '{"data": "ok"}',
                '{"data": [1, 2]}',
                '{"data": [{"id": 100, "type": "qemu"}]}',
                "{}",
                "[]",
                "null",
                "",
            )
        ],
    ),
    Outage(
        "missing fields",
        "bad_response",
        lambda rows: [
            body(_without(rows, {"qemu", "lxc"}, "node")),
            body(_without(rows, {"node"}, "status")),
            body(_without(rows, {"storage"}, "status", "node")),
            body(_without(rows, {"qemu"}, "id")),
            body(_only(rows, {"qemu", "lxc", "storage", "pool"})),
        ],
    ),
    Outage(
        "odd JSON",
        "bad_response",
        lambda rows: [
            body("[" * 100_000 + "]" * 100_000),
            body('{"data": [{"id": "node/pve1", "type": "node", "node": "pve1", "status": NaN}]}'),
            body('{"data": [' + json.dumps(rows)[1:-1] + ",]}"),  # a trailing comma
            body('{"data": ' + json.dumps(rows)[: len(json.dumps(rows)) // 3]),
        ],
    ),
    Outage(
        "everything at once",
        None,
        lambda rows: [
            status(500, 1),
            status(401, 1),
            fault("reset", 1),
            body('{"data": []}'),
            fault("garbage", 2),
            status(595, 1),
            body(_only(rows, {"qemu", "lxc"})),
        ],
    ),
]


async def _outage(rig: Rig, outage: Outage, guest: str) -> tuple[list[str], int]:
    """Inject the outage, start `guest` during it, poll through it and one poll beyond;
    the events it produced ("type resource") and the number of failing answers."""
    before = len(rig.stored())
    failing = rig.inject(outage.faults(rig.rows()))
    for n in range(failing):
        result = await rig.poll()
        assert not result.ok, f"{outage.name}: failing answer {n + 1} made a good poll"
        if n == 0:
            rig.patch(guest, {"status": "running"})
    assert rig.pending_faults() == [], f"{outage.name}: not every fault was consumed"
    assert (await rig.poll()).ok, f"{outage.name}: the poll after the outage failed"
    assert (await rig.poll()).events == [], f"{outage.name}: a quiet poll made events"
    produced = rig.stored()[before:]
    for event in produced:
        if event.type.startswith("source.") and outage.kind is not None:
            assert event.details.get("error") == outage.kind, (outage.name, event.details)
    return [f"{e.type} {e.resource.id if e.resource else ''}".strip() for e in produced], failing


async def test_every_outage_is_one_unreachable_one_recovered_and_no_false_event(
    tmp_path: Path, figures: Figures
) -> None:
    outages = OUTAGES * figures.scaled(1, 5)
    with simulator(guests=len(outages) + 10) as sim:
        async with watching(sim, fault_config(sim, tmp_path)) as rig:
            # Each outage starts another stopped guest: a start is sent at once (no hold)
            # and no guest changes often enough to count as flapping.
            guests = [r["id"] for r in rig.rows() if r["type"] in ("qemu", "lxc")]
            for guest in guests:
                rig.patch(guest, {"status": "stopped"})
            assert (await rig.poll()).ok  # the baseline
            for outage, guest in zip(outages, guests, strict=False):
                produced, failing = await _outage(rig, outage, guest)
                expected = ["source.unreachable", "source.recovered", f"guest.started {guest}"]
                assert produced == expected, outage.name
                figures.add("outages")
                figures.add("faults_injected", failing)
                figures.add("polls", failing + 2)
            await rig.deliver()
            stored, sent = rig.stored(), rig.sent()
    assert all(e.suppressed is None for e in stored)
    assert sorted(e["id"] for e in sent) == sorted(e.id for e in stored), "the log sink differs"
    figures.add("events_checked", len(stored))


@pytest.mark.parametrize("kind", ["status", "reset"])
async def test_a_short_hiccup_below_the_threshold_says_nothing(
    kind: str, tmp_path: Path, figures: Figures
) -> None:
    with simulator() as sim:
        async with watching(sim, fault_config(sim, tmp_path, threshold=3)) as rig:
            assert (await rig.poll()).ok
            for _ in range(figures.scaled(5, 50)):
                figures.add("faults_injected", rig.inject([fault(kind, 2, code=500)]))
                assert not (await rig.poll()).ok
                assert not (await rig.poll()).ok
                assert (await rig.poll()).ok
                figures.add("polls", 3)
            assert rig.stored() == []
