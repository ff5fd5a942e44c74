"""Flapping: too many status changes → one *.flapping, quiet, then one *.flapping_ended."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from pvewatch.model import Severity
from tests.watch.shape_cluster import NO_HOLDS, Run, cluster, flaps, guest, node, storage

VM = "qemu/100"


def _flip(run: Run, times: int, *, start: float = 0.0, every: float = 10.0) -> float:
    """VM 100 running, then `times` status changes `every` seconds apart; the last time."""
    t = start
    run.poll(t, cluster(node("pve1"), guest(100)))
    for i in range(times):
        t += every
        run.poll(
            t, cluster(node("pve1"), guest(100, status="stopped" if i % 2 == 0 else "running"))
        )
    return t


def _quiet(run: Run, until: float, *, start: float, status: str = "running") -> None:
    t = start
    while t < until:
        t += 10
        run.poll(t, cluster(node("pve1"), guest(100, status=status)))


def test_ten_flaps_are_some_transitions_one_flapping_and_one_summary() -> None:
    run = Run(flaps(transitions=3, window=120, stable=60))
    last = _flip(run, 10)  # ends running
    assert run.sent_types(VM) == [
        "guest.stopped",
        "guest.started",
        "guest.stopped",
        "guest.flapping",
    ]
    _quiet(run, last + 60, start=last)
    types = run.sent_types(VM)
    assert types.count("guest.flapping") == 1
    # The summary, then what the sinks last heard (stopped) made true again.
    assert types[-2:] == ["guest.flapping_ended", "guest.started"]
    suppressed = [e for e in run.recorded if e.suppressed == "flapping"]
    assert len(suppressed) == 10 - 3
    ended, started = run.sent(resource=VM)[-2:]
    assert ended.details["status"] == "running"
    assert ended.details["transitions"] == 10
    assert ended.severity is Severity.INFO
    assert "stopped flapping after 10 status changes" in ended.summary
    assert started.resolves == run.sent(resource=VM)[2].id
    assert started.details["after_flapping"] == ended.id


def test_with_holds_a_fast_flap_sends_only_the_flapping_pair() -> None:
    run = Run(flaps(transitions=3, window=120, stable=60, guest_stopped=30))
    last = _flip(run, 10)
    _quiet(run, last + 60, start=last)
    assert run.sent_types(VM) == ["guest.flapping", "guest.flapping_ended"]


def test_flapping_that_settles_in_a_bad_state_ends_as_a_warning_and_starts_a_problem() -> None:
    run = Run(flaps(transitions=3, window=120, stable=30, guest_stopped=30))
    last = _flip(run, 5)  # ends stopped; every stop before was held, none sent
    _quiet(run, last + 30, start=last, status="stopped")
    flapping, ended, stopped = run.sent(resource=VM)
    assert (flapping.type, ended.type, stopped.type) == (
        "guest.flapping",
        "guest.flapping_ended",
        "guest.stopped",
    )
    assert ended.severity is Severity.WARNING
    assert (ended.condition, ended.resolves) == ("guest.flapping:qemu/100", flapping.id)
    assert stopped.condition == "guest.stopped:qemu/100"
    run.poll(last + 100, cluster(node("pve1"), guest(100)))
    assert run.sent(resource=VM)[-1].resolves == stopped.id


def test_flapping_leaves_an_open_problem_open_and_says_nothing_if_it_still_holds() -> None:
    run = Run(flaps(transitions=3, window=120, stable=30))
    last = _flip(run, 5)  # sent: stopped, started, stopped (open); then flapping; ends stopped
    _quiet(run, last + 30, start=last, status="stopped")
    sent = run.sent(resource=VM)
    assert [e.type for e in sent][3:] == ["guest.flapping", "guest.flapping_ended"]
    assert sent[3].resolves is None
    run.poll(last + 100, cluster(node("pve1"), guest(100)))
    assert run.sent(resource=VM)[-1].resolves == sent[2].id


def test_changes_spread_over_more_than_the_window_are_not_flapping() -> None:
    run = Run(flaps(transitions=3, window=60, stable=60))
    _flip(run, 10, every=30)
    assert "guest.flapping" not in run.sent_types(VM)
    assert len(run.sent(resource=VM)) == 10


def test_other_events_of_a_flapping_guest_go_quiet_too() -> None:
    run = Run(flaps(transitions=2, window=120, stable=60))
    last = _flip(run, 3)
    run.poll(last + 10, cluster(node("pve1"), guest(100, status="stopped", lock="backup")))
    assert run.recorded[-1].type == "guest.lock_changed"
    assert run.recorded[-1].suppressed == "flapping"


def test_nodes_and_storages_flap_too() -> None:
    run = Run(flaps(transitions=2, window=120, stable=60))
    for i in range(4):
        state = "offline" if i % 2 else "online"
        run.poll(i * 10, cluster(node("pve1"), node("pve2", state), storage("pve1", status=state)))
    assert run.sent_types("node/pve2").count("node.flapping") == 1
    assert run.sent_types("storage/pve1/local").count("storage.flapping") == 1


def test_a_removed_resource_ends_its_flapping() -> None:
    run = Run(flaps(transitions=2, window=120, stable=60))
    last = _flip(run, 3)
    run.poll(last + 10, cluster(node("pve1")))
    removed = run.sent(resource=VM)[-1]
    assert removed.type == "guest.removed"
    assert removed.resolves is not None
    assert run.state["flapping"] == {}


def test_flapping_off() -> None:
    run = Run(NO_HOLDS)
    _flip(run, 10)
    assert "guest.flapping" not in run.sent_types(VM)


@settings(max_examples=100, deadline=None)
@given(
    gaps=st.lists(st.sampled_from([5.0, 10.0, 30.0, 90.0, 400.0]), min_size=1, max_size=40),
    transitions=st.integers(1, 6),
)
def test_flapping_and_its_end_always_pair_up(gaps: list[float], transitions: int) -> None:
    run = Run(flaps(transitions=transitions, window=120, stable=60))
    t = 0.0
    run.poll(t, cluster(node("pve1"), guest(100)))
    for i, gap in enumerate(gaps):
        t += gap
        run.poll(
            t, cluster(node("pve1"), guest(100, status="stopped" if i % 2 == 0 else "running"))
        )
    _quiet(run, t + 60, start=t, status="stopped" if len(gaps) % 2 else "running")
    types = [x for x in run.sent_types(VM) if "flapping" in x]
    # Alternating, starting with flapping, and every flapping has ended once it is quiet.
    assert types == ["guest.flapping", "guest.flapping_ended"] * (len(types) // 2)
    assert run.state["flapping"].get(VM, {}).get("since") is None


def test_no_reminders_while_flapping() -> None:
    run = Run(replace(flaps(transitions=3, window=600, stable=300), repeat_interval_secs=20))
    _flip(run, 5)  # the third change (a stop) was sent and is open; then flapping
    _quiet(run, 250, start=50, status="stopped")
    assert not [e for e in run.sent(resource=VM) if e.details.get("reminder")]
    _quiet(run, 400, start=250, status="stopped")  # flapping ended at 350: reminders again
    assert [e for e in run.sent(resource=VM) if e.details.get("reminder")]
