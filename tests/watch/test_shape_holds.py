"""Hold: a transition is sent only once it has lasted its type's for_secs."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pvewatch.config.shape import DEFAULT_HOLD_SECS, ShapeConfig
from pvewatch.model import Event
from tests.watch.shape_cluster import Run, at, cluster, guest, holds, node, with_status

VM = "qemu/100"
STATUS = {"R": "running", "S": "stopped", "P": "paused"}


def _statuses(run: Run, letters: str, every: float = 10.0) -> list[list[Event]]:
    """One poll per letter, `every` seconds apart, VM 100 in that state; what each recorded."""
    return [
        run.poll(i * every, cluster(node("pve1"), guest(100, status=STATUS[letter])))
        for i, letter in enumerate(letters)
    ]


@pytest.mark.parametrize(
    ("letters", "sent"),
    [
        ("RSSSS", [("guest.stopped", 10, 40)]),  # first seen at 10 s, lasted to 40 s
        ("RS", []),  # still held
        ("RSR", []),  # a reboot: the stop and the start are both held
        ("RSSR", []),
        ("RSSSR", []),  # back at 40 s, the hold is over only then: never lasted 30 s
        ("RSSSSR", [("guest.stopped", 10, 40), ("guest.started", 50, 50)]),
        ("RSPR", []),  # stopped, paused, running again: nothing came of it
        ("RSPPPP", [("guest.paused", 20, 50)]),  # the last of a chain is what is sent
        ("RRRR", []),
    ],
)
def test_hold_sequences(letters: str, sent: list[tuple[str, float, float]]) -> None:
    """(type, first seen at, sent at) of what is sent, polls every 10 s, hold 30 s."""
    run = Run(holds(guest_stopped=30, guest_paused=30))
    polls = _statuses(run, letters)
    found = [
        (e.type, e.time, i * 10.0) for i, out in enumerate(polls) for e in out if not e.suppressed
    ]
    assert found == [(t, at(first), when) for t, first, when in sent]


def test_held_and_confirmed_events_are_distinct_records_of_one_transition() -> None:
    run = Run(holds(guest_stopped=30))
    _statuses(run, "RSSSS")
    raw = [e for e in run.recorded if e.type == "guest.stopped"]
    assert [e.suppressed for e in raw] == ["held", None]
    held, confirmed = raw
    assert confirmed.id != held.id
    assert confirmed.time == held.time == at(10)
    assert confirmed.change == held.change
    assert confirmed.details["held_secs"] == 30


def test_confirmed_id_is_deterministic_across_replays() -> None:
    first, second = Run(holds(guest_stopped=30)), Run(holds(guest_stopped=30))
    _statuses(first, "RSSSS")
    _statuses(second, "RSSSS")
    assert [e.id for e in first.recorded] == [e.id for e in second.recorded]


def test_a_type_without_hold_is_sent_at_once() -> None:
    run = Run(holds(guest_stopped=30))
    _statuses(run, "SR")
    assert [(e.type, e.suppressed) for e in run.recorded] == [("guest.started", None)]


def test_a_late_transition_is_not_held() -> None:
    """Found by the diff after a restart: it lasted an unknown while already."""
    run = Run(holds(guest_stopped=30))
    run.poll(0, cluster(guest(100)))
    (event,) = run.poll(600, cluster(guest(100, status="stopped")), late=True)
    assert event.suppressed is None
    assert event.detected_late


def test_a_failed_poll_confirms_nothing() -> None:
    run = Run(holds(guest_stopped=30))
    _statuses(run, "RS")
    assert run.failed(100) == []
    (confirmed,) = run.poll(110, cluster(node("pve1"), guest(100, status="stopped")))
    assert confirmed.type == "guest.stopped"
    assert confirmed.time == at(10)


def test_a_hold_waits_while_the_guests_node_is_offline() -> None:
    """Its state is stale then: neither confirmed nor dropped until the node is back."""
    run = Run(holds(guest_stopped=30))
    up = cluster(node("pve1"), node("pve2"), guest(100))
    run.poll(0, up)
    run.poll(10, with_status(up, **{"qemu/100": "stopped"}))
    down = with_status(up, **{"qemu/100": "stopped", "node/pve1": "offline"})
    run.poll(20, down)
    run.poll(60, down)
    assert run.sent_types(VM) == []
    run.poll(70, with_status(up, **{"qemu/100": "stopped"}))
    assert run.sent_types(VM) == ["guest.stopped"]


def test_default_holds_fit_pvestatd() -> None:
    config = ShapeConfig()
    assert config.hold_secs == DEFAULT_HOLD_SECS
    assert config.hold_secs["node.offline"] > config.hold_secs["guest.stopped"] >= 20
    assert "guest.started" not in config.hold_secs  # recoveries are sent at once


@settings(max_examples=200, deadline=None)
@given(
    letters=st.text(alphabet="RS", min_size=1, max_size=30),
    gaps=st.lists(st.sampled_from([5.0, 10.0, 20.0, 45.0]), min_size=30, max_size=30),
    hold=st.sampled_from([0.0, 10.0, 30.0]),
)
def test_sent_stops_lasted_their_hold_and_alternate(
    letters: str, gaps: list[float], hold: float
) -> None:
    run = Run(holds(guest_stopped=hold, guest_started=hold))
    seen: list[tuple[float, str]] = []
    t = 0.0
    for letter, gap in zip("R" + letters, gaps, strict=False):
        run.poll(t, cluster(node("pve1"), guest(100, status=STATUS[letter])))
        seen.append((t, STATUS[letter]))
        t += gap
    sent = [e for e in run.sent() if e.type in ("guest.stopped", "guest.started")]
    # Sent transitions alternate: never two stops (or starts) in a row.
    kinds = [e.type for e in sent]
    assert all(a != b for a, b in itertools.pairwise(kinds))
    for event in sent:
        # The state it reports was observed at every poll within its hold.
        first = (event.time - at(0)).total_seconds()
        within = [s for when, s in seen if first <= when <= first + hold]
        assert within
        assert set(within) == {event.change.new if event.change else None}
