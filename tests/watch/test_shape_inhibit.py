"""Inhibition: a node outage is one event; quorum loss and source outages absorb the rest."""

from __future__ import annotations

from dataclasses import replace

from pvewatch.model import Resource
from tests.watch.shape_cluster import (
    NO_HOLDS,
    Run,
    at,
    cluster,
    guest,
    holds,
    node,
    quorum_event,
    storage,
    with_status,
)


def _lab(guests_on_pve3: int = 20) -> dict[str, Resource]:
    return cluster(
        node("pve1"),
        node("pve2"),
        node("pve3"),
        guest(100, "pve1"),
        storage("pve1"),
        storage("pve3"),
        storage("pve3", "nfs"),
        *(guest(300 + i, "pve3", "running" if i % 4 else "stopped") for i in range(guests_on_pve3)),
    )


def _offline(
    resources: dict[str, Resource], name: str, guests: str | None = None
) -> dict[str, Resource]:
    """The node offline; its guests as PVE shows them (last values, or `guests`)."""
    out = with_status(resources, **{f"node/{name}": "offline"})
    if guests is not None:
        out = {
            rid: replace(r, status=guests) if r.node == name and r.type != "node" else r
            for rid, r in out.items()
        }
    return out


def test_node_offline_is_one_event_listing_what_is_on_it() -> None:
    run = Run(NO_HOLDS)
    lab = _lab()
    run.poll(0, lab)
    run.poll(10, _offline(lab, "pve3"))
    run.poll(20, _offline(lab, "pve3", guests="stopped"))  # stale: must not say stopped
    run.poll(30, _offline(lab, "pve3", guests="unknown"))  # PVE's expiry after 5 min
    (offline,) = run.sent()
    assert offline.type == "node.offline"
    assert offline.condition == "node.offline:node/pve3"
    guests = offline.details["guests"]
    assert isinstance(guests, list)
    assert len(guests) == 20
    assert guests[0] == {"id": "qemu/300", "vmid": 300, "name": "vm300", "last_status": "stopped"}
    assert [s["id"] for s in offline.details["storages"]] == [  # type: ignore[union-attr,index]
        "storage/pve3/local",
        "storage/pve3/nfs",
    ]
    assert "(20 guests, 2 storages on it)" in offline.summary
    inhibited = [e for e in run.recorded if e.suppressed == "inhibited"]
    assert inhibited
    assert all(e.resource and e.resource.node == "pve3" for e in inhibited)
    # Back with everything as before the outage: one node.online, nothing about the guests.
    run.poll(40, lab)
    assert run.sent_types() == ["node.offline", "node.online"]
    assert run.sent()[-1].resolves == offline.id
    assert run.state["outages"] == {}


def test_what_really_changed_during_the_outage_is_sent_when_the_node_is_back() -> None:
    run = Run(NO_HOLDS)
    lab = _lab(3)
    run.poll(0, lab)
    run.poll(10, _offline(lab, "pve3"))
    back = with_status(lab, **{"qemu/301": "stopped", "storage/pve3/nfs": "unknown"})
    run.poll(20, back)
    reconciled = [e for e in run.sent() if e.details.get("reconciled")]
    assert [(e.type, e.resource.id if e.resource else None) for e in reconciled] == [
        ("guest.stopped", "qemu/301"),
        ("storage.unavailable", "storage/pve3/nfs"),
    ]
    stop = reconciled[0]
    assert stop.detected_late
    assert stop.change is not None
    assert stop.change.old == "running"
    assert stop.details["reconciled"] == {"node": "pve3", "offline_since": "2026-11-28T03:00:10Z"}
    assert stop.condition == "guest.stopped:qemu/301"


def test_a_guest_recovered_elsewhere_is_reported_once_from_where_it_runs() -> None:
    run = Run(NO_HOLDS)
    lab = _lab(2)
    run.poll(0, lab)
    run.poll(10, _offline(lab, "pve3"))
    moved = _offline(lab, "pve3")
    moved["qemu/301"] = replace(moved["qemu/301"], node="pve1", hastate="started")
    run.poll(20, moved)
    assert run.sent_types("qemu/301") == ["guest.migrated", "guest.ha_state_changed"]
    back = dict(lab)
    back["qemu/301"] = moved["qemu/301"]
    run.poll(30, back)
    assert run.sent_types("qemu/301") == ["guest.migrated", "guest.ha_state_changed"]


def test_a_short_outage_within_the_node_hold_sends_nothing() -> None:
    run = Run(holds(node_offline=60))
    lab = _lab(3)
    run.poll(0, lab)
    run.poll(10, _offline(lab, "pve3", guests="stopped"))
    run.poll(30, lab)
    assert run.sent() == []
    held = [e.type for e in run.recorded if e.suppressed == "held"]
    assert held == ["node.offline", "node.online"]


def test_a_held_node_offline_that_lasts_is_sent_with_its_list() -> None:
    run = Run(holds(node_offline=60))
    lab = _lab(3)
    run.poll(0, lab)
    for t in (10, 40, 70):
        run.poll(t, _offline(lab, "pve3"))
    (offline,) = run.sent()
    assert offline.time == at(10)
    assert len(offline.details["guests"]) == 3  # type: ignore[arg-type]


def test_an_outage_in_progress_at_the_first_poll_is_inhibited_too() -> None:
    run = Run(NO_HOLDS)
    lab = _offline(_lab(2), "pve3")
    run.poll(0, lab)  # the baseline
    run.poll(10, _offline(_lab(2), "pve3", guests="unknown"))
    run.poll(20, _lab(2))
    assert run.sent_types() == ["node.online"]


def test_while_quorum_is_lost_node_events_are_attached_to_the_quorum_events() -> None:
    run = Run(NO_HOLDS)
    lab = _lab(1)
    run.poll(0, lab, quorate=True)
    two_down = _offline(_offline(lab, "pve2"), "pve3")
    run.poll(10, two_down, quorate=False, extra=[quorum_event("cluster.quorum_lost", at(10))])
    run.poll(20, _offline(lab, "pve3"), quorate=False)  # pve2 back, still no quorum
    run.poll(30, lab, quorate=True, extra=[quorum_event("cluster.quorum_regained", at(30))])
    assert run.sent_types() == ["cluster.quorum_lost", "cluster.quorum_regained"]
    lost, regained = run.sent()
    assert lost.condition == "cluster.quorum_lost"
    assert regained.resolves == lost.id
    assert [n["node"] for n in lost.details["node_events"]] == ["pve2", "pve3"]  # type: ignore[index,union-attr]
    assert lost.details["nodes_offline"] == ["pve2", "pve3"]
    assert [(n["type"], n["node"]) for n in regained.details["node_events"]] == [  # type: ignore[index,union-attr]
        ("node.online", "pve2"),
        ("node.online", "pve3"),
    ]
    assert regained.details["nodes_offline"] == []
    assert "quorum" not in run.state


def test_a_poll_ending_in_source_unreachable_sends_nothing_else() -> None:
    run = Run(NO_HOLDS)
    run.poll(0, _lab(1))
    unreachable = quorum_event("source.unreachable", at(10))
    extra = [replace(quorum_event("cluster.quorum_lost", at(10)))]
    out = run.failed(10, [unreachable, *extra])
    assert [(e.type, e.suppressed) for e in out] == [
        ("source.unreachable", None),
        ("cluster.quorum_lost", "inhibited"),
    ]
