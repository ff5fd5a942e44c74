"""The health checks' pure core: answers (real and code-derived ones from FACTS-health.md)
→ findings, and findings over time → events (baseline, holds, escalation, resolution,
what an unread node hides)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvewatch.model import EVENT_TYPES, ResourceRef, Severity
from pvewatch.watch.checks import backups, findings, nodes
from pvewatch.watch.checks.evaluate import Context, evaluate
from pvewatch.watch.checks.findings import (
    CHECK_EVENT_TYPES,
    RESOLVED_BY,
    BadAnswer,
    Finding,
    Reading,
)
from pvewatch.watch.notifications import NOTIFICATION_EVENT_TYPES
from tests.simulator.shapes import captured

T0 = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)


def data(name: str) -> Any:
    return captured(name)["data"]


def bad(reading: Reading) -> dict[str, tuple[str, str]]:
    return {f.condition: (f.type, f.severity.value) for f in reading.findings if f.bad}


# --- answers → findings ----------------------------------------------------------------


def test_every_condition_kind_has_its_event_types_in_the_catalogue() -> None:
    for kind, resolved in RESOLVED_BY.items():
        assert resolved in EVENT_TYPES
        problem = {"ceph.health": "ceph.health_warn"}.get(kind, kind)
        assert problem in EVENT_TYPES
    assert set(EVENT_TYPES) >= CHECK_EVENT_TYPES
    families = ("ha", "ceph", "replication", "qdevice", "certificate", "disk", "zfs", "backup")
    of_families = {t for t in EVENT_TYPES if t.split(".")[0] in families}
    assert of_families - NOTIFICATION_EVENT_TYPES == CHECK_EVENT_TYPES - NOTIFICATION_EVENT_TYPES


def test_ha_real_answer_of_pve9_with_a_service_in_recovery_and_none_in_error() -> None:
    reading = findings.ha(data("synthetic-cluster-ha-status-current-pve9-fencing.json"), {})
    values = {f.condition: f.value for f in reading.findings}
    assert values["ha.resource_error:ha/vm:101"] == "recovery"
    assert bad(reading) == {}
    assert not reading.idle


@pytest.mark.parametrize(
    "name", ["synthetic-cluster-ha-status-current-no-ha-pve8.json",
             "synthetic-cluster-ha-status-current-no-ha-pve9.2.json"],
)  # fmt: skip
def test_ha_not_set_up_is_idle(name: str) -> None:
    assert findings.ha(data(name), {}) == Reading([], idle=True)


def test_ha_error_fence_and_a_fenced_node() -> None:
    current = [
        {"type": "service", "sid": "vm:100", "node": "pve1", "crm_state": "error"},
        {"type": "service", "sid": "ct:105", "node": "pve3", "crm_state": "fence"},
        {"type": "service", "sid": "vm:101", "node": "pve2", "state": "started"},
    ]
    manager = {"manager_status": {"node_status": {"pve1": "online", "pve3": "fence"}}}
    assert bad(findings.ha(current, manager)) == {
        "ha.resource_error:ha/vm:100": ("ha.resource_error", "critical"),
        "ha.resource_error:ha/ct:105": ("ha.resource_error", "critical"),
        "ha.node_fenced:ha/node/pve3": ("ha.node_fenced", "critical"),
    }


def test_the_real_ceph_answer_warns_with_its_two_checks() -> None:
    reading = findings.ceph("lab", data("go-proxmox-pve8x-cluster-ceph-status.json"))
    assert bad(reading) == {
        "ceph.health:ceph/lab": ("ceph.health_warn", "warning"),
        "ceph.check_raised:ceph/lab/OSD_NEARFULL": ("ceph.check_raised", "warning"),
        "ceph.check_raised:ceph/lab/POOL_NEARFULL": ("ceph.check_raised", "warning"),
    }


def test_ceph_err_checks_are_critical_and_muted_ones_info() -> None:
    reading = findings.ceph("lab", data("synthetic-cluster-ceph-status-health-err.json"))
    found = bad(reading)
    assert found["ceph.health:ceph/lab"] == ("ceph.health_err", "critical")
    assert found["ceph.check_raised:ceph/lab/PG_DAMAGED"] == ("ceph.check_raised", "critical")
    assert found["ceph.check_raised:ceph/lab/RECENT_CRASH"] == ("ceph.check_raised", "info")


def test_replication_code_derived_answer() -> None:
    answer = data("synthetic-nodes-replication.json")
    reading = findings.replication({"pve1": answer}, {100: "web1"}, frozenset())
    failing = [f for f in reading.findings if f.bad]
    for f in failing:
        assert f.resource.id.startswith("replication/")
        assert f.details["fail_count"] or f.details["error"]
        assert "→" in f.summary
    assert findings.replication({"pve1": []}, {}, frozenset()).idle


def test_replication_severity_rises_at_three_failures() -> None:
    row = {"id": "100-0", "guest": 100, "target": "pve2", "fail_count": 2, "error": "x"}
    one = findings.replication({"pve1": [row]}, {100: "web1"}, frozenset()).findings[0]
    three = findings.replication({"pve1": [{**row, "fail_count": 3}]}, {}, frozenset()).findings[0]
    assert (one.severity, three.severity) == (Severity.WARNING, Severity.CRITICAL)
    assert one.summary.startswith("replication job 100-0 (VM 100 web1 → pve2) failing")
    assert one.condition == "replication.failed:replication/100-0"


def test_qdevice_answers() -> None:
    assert findings.qdevice("lab", data("synthetic-cluster-config-qdevice-none.json")).idle
    ok = findings.qdevice("lab", data("synthetic-cluster-config-qdevice-connected.json"))
    failed = findings.qdevice("lab", data("synthetic-cluster-config-qdevice-connect-failed.json"))
    assert bad(ok) == {}
    assert bad(failed) == {"qdevice.disconnected:qdevice/lab": ("qdevice.disconnected", "critical")}


def test_certificates_warn_then_critical_and_the_root_ca_once() -> None:
    answer = data("synthetic-nodes-certificates-info.json")
    ssl = next(r for r in answer if r["filename"] == "pve-ssl.pem")
    end = datetime.fromtimestamp(ssl["notafter"], UTC)

    def at(days_left: float) -> dict[str, tuple[str, str]]:
        now = end - timedelta(days=days_left)
        reading = nodes.certificates({"pve1": answer, "pve2": answer}, now, 30, 7, frozenset())
        ids = [f.resource.id for f in reading.findings]
        assert ids.count("certificate/pve-root-ca.pem") == 1
        return {k: v for k, v in bad(reading).items() if "pve1/pve-ssl" in k}

    assert at(40) == {}
    assert at(20) == {"certificate.expiring:certificate/pve1/pve-ssl.pem": (
        "certificate.expiring", "warning")}  # fmt: skip
    assert at(3)["certificate.expiring:certificate/pve1/pve-ssl.pem"][1] == "critical"


def test_disks_real_answers_and_a_failed_disk_and_a_faulted_pool() -> None:
    listed = data("ansible-community-proxmox-pve9-nodes-disks-list.json")
    pools = data("synthetic-nodes-disks-zfs.json")  # rpool DEGRADED, tank ONLINE
    assert bad(nodes.disks({"pve1": listed}, {"pve1": pools}, frozenset())) == {
        "zfs.degraded:zfs/pve1/rpool": ("zfs.degraded", "warning")
    }
    failing = [{**listed[0], "health": "FAILED!"}]
    degraded = [{**pools[0], "health": "FAULTED"}]
    found = bad(nodes.disks({"pve1": failing}, {"pve1": degraded}, frozenset()))
    dev = listed[0]["devpath"].removeprefix("/dev/")
    assert found == {
        f"disk.failed:disk/pve1/{dev}": ("disk.failed", "critical"),
        f"zfs.degraded:zfs/pve1/{pools[0]['name']}": ("zfs.degraded", "critical"),
    }


def test_backups_coverage_and_age() -> None:
    guests = [backups.Guest(100, "qemu", "web1", "pve1"), backups.Guest(101, "qemu", None, "pve2"),
              backups.Guest(102, "lxc", "ct", "pve1")]  # fmt: skip
    now = T0
    content = [
        {"content": "backup", "vmid": 100, "ctime": int((now - timedelta(hours=3)).timestamp())},
        {"content": "backup", "vmid": 102, "ctime": int((now - timedelta(days=3)).timestamp())},
    ]
    missing = [{"vmid": 101, "type": "qemu"}]
    reading = backups.backups(guests, missing, [content], now, 26)
    assert bad(reading) == {
        "backup.not_covered:backup/qemu/101": ("backup.not_covered", "warning"),
        "backup.stale:backup/lxc/102": ("backup.stale", "warning"),
    }
    unknown = backups.backups(guests, missing, None, now, 26)
    assert unknown.unread_kinds == frozenset({"backup.stale"})


@pytest.mark.parametrize(
    ("call", "answer"),
    [
        (
            lambda a: nodes.certificates({"n": a}, T0, 30, 7, frozenset()),
            [{"filename": "x", "notafter": 10**20}],
        ),
        (
            lambda a: nodes.certificates({"n": a}, T0, 30, 7, frozenset()),
            [{"filename": "x", "notafter": "²"}],
        ),
        (lambda a: findings.ha(a, {}), {"data": 1}),
        (lambda a: findings.ha([{"type": "service"}], a), {}),
        (lambda a: findings.ceph("lab", a), {"health": "HEALTH_OK"}),
        (lambda a: findings.ceph("lab", a), []),
        (lambda a: findings.replication({"pve1": a}, {}, frozenset()), [{"id": "1-0"}]),
        (lambda a: findings.qdevice("lab", a), {"State": 5}),
        (lambda a: nodes.certificates({"n": a}, T0, 30, 7, frozenset()), [{"filename": "x"}]),
        (lambda a: nodes.disks({"n": a}, {}, frozenset()), [{"health": "OK"}]),
        (lambda a: nodes.disks({}, {"n": a}, frozenset()), [{"name": "rpool"}]),
        (lambda a: backups.backups([], a, [], T0, 26), [{"vmid": "x"}]),
    ],
)
def test_an_answer_of_the_wrong_shape_is_a_bad_answer(call: Any, answer: object) -> None:
    with pytest.raises(BadAnswer):
        call(answer)


# --- findings over time → events ---------------------------------------------------------


def disk(is_bad: bool, node: str = "pve1", health: str | None = None) -> Finding:
    ref = ResourceRef(f"disk/{node}/sda", "disk", node=node, name="sda")
    text = health or ("FAILED!" if is_bad else "PASSED")
    return Finding(f"disk.failed:disk/{node}/sda", "disk.failed", is_bad, ref, text,
                   Severity.CRITICAL)  # fmt: skip


def run(
    state: dict[str, Any], reading: Reading, at: float, hold: float = 0, late: bool = False
) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    ctx = Context(T0 + timedelta(seconds=at), late, lambda t: hold)
    events, new = evaluate("lab", reading, json.loads(json.dumps(state)), ctx)
    return [(e.type, e) for e in events], new


def test_bad_at_first_sight_is_reported_at_start_and_good_is_the_baseline() -> None:
    events, state = run({}, Reading([disk(True), disk(False, "pve2")]), 0)
    assert [(t, e.details.get("at_start"), e.resource.id) for t, e in events] == [
        ("disk.failed", True, "disk/pve1/sda")
    ]
    events, state = run(state, Reading([disk(True), disk(False, "pve2")]), 10)
    assert events == []


def test_a_problem_waits_its_hold_a_blip_sends_nothing() -> None:
    _, state = run({}, Reading([disk(False)]), 0)
    events, state = run(state, Reading([disk(True)]), 10, hold=30)
    assert events == []
    events, state = run(state, Reading([disk(False)]), 20, hold=30)
    assert events == []
    _, state = run(state, Reading([disk(True)]), 30, hold=30)
    events, state = run(state, Reading([disk(True)]), 50, hold=30)
    assert events == []
    events, state = run(state, Reading([disk(True)]), 60, hold=30)
    assert [t for t, _ in events] == ["disk.failed"]
    assert events[0][1].details["since"] == "2026-12-04T20:00:30Z"
    events, state = run(state, Reading([disk(False)]), 70, hold=30)
    assert [(t, e.resolves) for t, e in events] == [("disk.healthy", events[0][1].resolves)]
    assert events[0][1].resolves is not None


def test_an_unread_node_hides_its_conditions_and_a_gone_one_is_resolved() -> None:
    _, state = run({}, Reading([disk(False)]), 0)
    opened, state = run(state, Reading([disk(True)]), 10)
    events, state = run(state, Reading([], unread_nodes=frozenset({"pve1"})), 20)
    assert events == []
    events, state = run(state, Reading([]), 30)
    assert [(t, e.details.get("gone"), e.resolves) for t, e in events] == [
        ("disk.healthy", True, opened[0][1].id)
    ]


def test_a_change_of_type_or_a_higher_severity_is_sent_again_under_the_same_condition() -> None:
    ref = ResourceRef("ceph/lab", "ceph")

    def health(type_: str, severity: Severity) -> Reading:
        return Reading([Finding("ceph.health:ceph/lab", type_, True, ref, type_, severity)])

    first, state = run({}, health("ceph.health_warn", Severity.WARNING), 0)
    events, state = run(state, health("ceph.health_err", Severity.CRITICAL), 10)
    assert [(t, e.condition, e.details["previous"]) for t, e in events] == [
        ("ceph.health_err", "ceph.health:ceph/lab", first[0][1].id)
    ]
    ok = Reading([Finding("ceph.health:ceph/lab", "ceph.health_warn", False, ref, "ok")])
    end, state = run(state, ok, 20)
    assert [(t, e.resolves) for t, e in end] == [("ceph.health_ok", events[0][1].id)]


def test_ha_state_changes_are_info_events_beside_the_condition() -> None:
    ref = ResourceRef("ha/vm:100", "ha", name="vm:100")

    def state_of(value: str) -> Reading:
        f = Finding("ha.resource_error:ha/vm:100", "ha.resource_error", value == "error", ref,
                    value, Severity.CRITICAL, value=value)  # fmt: skip
        return Reading([f])

    _, state = run({}, state_of("started"), 0)
    types = []
    for i, value in enumerate(("migrate", "started", "error", "recovery", "started"), 1):
        events, state = run(state, state_of(value), i)
        types += [t for t, _ in events]
    assert types == [
        "ha.resource_state_changed", "ha.resource_state_changed", "ha.resource_error",
        "ha.resource_recovered", "ha.resource_state_changed",
    ]  # fmt: skip


def test_late_events_are_marked() -> None:
    _, state = run({}, Reading([disk(False)]), 0)
    events, _ = run(state, Reading([disk(True)]), 10, late=True)
    assert events[0][1].detected_late


@given(st.lists(st.booleans(), min_size=1, max_size=30))
def test_problems_and_resolutions_alternate_and_pair_up(seq: list[bool]) -> None:
    """Whatever the readings (and with the memory through JSON between runs, as across
    a restart): each problem is sent once and resolved once, in turn, paired by id."""
    state: dict[str, Any] = {}
    sent: list[Any] = []
    for i, is_bad in enumerate(seq):
        events, state = run(state, Reading([disk(is_bad)]), i * 10)
        sent += [e for _, e in events]
    types = [e.type for e in sent]
    assert types == ["disk.failed", "disk.healthy"] * (len(types) // 2) + (
        ["disk.failed"] if len(types) % 2 else []
    )
    for problem, resolution in zip(sent[::2], sent[1::2], strict=False):
        assert resolution.resolves == problem.id
    assert bool(len(types) % 2) == seq[-1]
    assert (sent[0].details.get("at_start") is True) == seq[0] if sent else True


def test_a_ceph_check_no_longer_listed_is_cleared_not_gone() -> None:
    raised = findings.ceph("lab", data("synthetic-cluster-ceph-status-health-err.json"))
    _, state = run({}, raised, 0)
    ok = findings.ceph("lab", {"health": {"status": "HEALTH_OK", "checks": {}}})
    events, _ = run(state, ok, 10)
    cleared = [e for t, e in events if t == "ceph.check_cleared"]
    assert {e.summary for e in cleared} >= {"OSD_DOWN cleared", "PG_DAMAGED cleared"}
    assert all("gone" not in e.details for e in cleared)
    assert [t for t, _ in events if t == "ceph.health_ok"] == ["ceph.health_ok"]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["type", "sid", "crm_state", "state", "node", "health", "status",
                         "checks", "id", "guest", "fail_count", "error", "last_sync",
                         "State", "filename", "notafter", "devpath", "name", "vmid",
                         "ctime", "content", "summary", "severity", "muted"]),
        inner, max_size=6),
    max_leaves=20,
)  # fmt: skip


@given(_JSON)
def test_any_answer_is_a_reading_or_a_bad_answer_never_a_crash(answer: Any) -> None:
    """What a server sends never crashes a check: it is read, or it is a BadAnswer."""
    calls: tuple[Callable[[], Reading], ...] = (
        lambda: findings.ha(answer, {}),
        lambda: findings.ha([{"type": "service", "sid": "vm:1", "state": "error"}], answer),
        lambda: findings.ceph("lab", answer),
        lambda: findings.ceph("lab", {"health": answer}),
        lambda: findings.replication({"pve1": answer}, {}, frozenset()),
        lambda: findings.qdevice("lab", answer),
        lambda: nodes.certificates({"pve1": answer}, T0, 30, 7, frozenset()),
        lambda: nodes.disks({"pve1": answer}, {"pve1": answer}, frozenset()),
        lambda: backups.backups([backups.Guest(1, "qemu", None, None)], answer, [answer], T0, 26),
    )
    for call in calls:
        try:
            reading = call()
        except BadAnswer:
            continue
        assert isinstance(reading, Reading)
