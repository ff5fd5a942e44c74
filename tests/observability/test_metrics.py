"""The metrics: the Observer's hooks in, the exposition out (text and OpenMetrics)."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvewatch.config.types import SinkConfig
from pvewatch.errors import StoreError
from pvewatch.model import Event, Resource, ResourceRef, Severity, Snapshot
from pvewatch.observability.metrics import Metrics, MetricsOptions
from pvewatch.routing import SinkFilter
from pvewatch.sinks.log import LogOptions
from pvewatch.sinks.prometheus import PrometheusOptions
from tests.prom import (
    families,
    parse,
    promtool,
    promtool_check_metrics,
    select,
    value,
)

T0 = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
METRICS_DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def guest(vmid: int, status: str = "running", **fields: object) -> Resource:
    return Resource(f"qemu/{vmid}", "qemu", status, "pve1", f"vm{vmid}", vmid, **fields)  # type: ignore[arg-type]


def snapshot(*resources: Resource, quorate: bool | None = True) -> Snapshot:
    return Snapshot("prod", {r.id: r for r in resources}, T0, quorate)


def event(type_: str, resource: Resource | None, severity: Severity = Severity.INFO) -> Event:
    ref = ResourceRef.of(resource) if resource else None
    return Event(f"evt_{type_}", type_, T0, "prod", severity, type_, ref)


class Clocks:
    def __init__(self) -> None:
        self.wall, self.mono = 1_800_000_000.0, 100.0

    def advance(self, secs: float) -> None:
        self.wall += secs
        self.mono += secs


class FakeOutbox:
    def __init__(self) -> None:
        self.pending = {"console": 3}
        self.calls = 0
        self.fail = False

    def pending_count(self, sink: str) -> int:
        self.calls += 1
        if self.fail:
            raise StoreError("state store x: the store is closed")
        return self.pending.get(sink, 0)

    def dead_count(self, sink: str) -> int:
        return 1


def make(
    options: MetricsOptions | None = None, store: FakeOutbox | None = None
) -> tuple[Metrics, Clocks]:
    clocks = Clocks()
    metrics = Metrics(
        clusters={"prod": 10.0, "lab": 5.0},
        sinks=["console"],
        store=store,
        options=options,
        clock=lambda: clocks.wall,
        monotonic=lambda: clocks.mono,
    )
    return metrics, clocks


def polled(metrics: Metrics, snap: Snapshot, events: list[Event] | None = None) -> None:
    metrics.poll_finished(
        "prod", ok=True, duration_secs=0.2, snapshot=snap, events=events or [], error_kind=None
    )


def scrape(metrics: Metrics) -> str:
    body, content_type = metrics.render(None)
    assert content_type.startswith("text/plain; version=0.0.4")
    return body.decode()


@pytest.mark.parametrize(
    ("resource", "up"),
    [
        (guest(100, "running"), 1.0),
        (guest(100, "stopped"), 0.0),
        (guest(100, "paused"), 0.0),
        (Resource("lxc/200", "lxc", "unknown", "pve1", "ct", 200), 0.0),
        (Resource("node/pve1", "node", "online", "pve1"), 1.0),
        (Resource("node/pve1", "node", "offline", "pve1"), 0.0),
        (Resource("storage/pve1/local", "storage", "available", "pve1"), 1.0),
        (Resource("storage/pve1/local", "storage", "unknown", "pve1"), 0.0),
        (Resource("sdn/pve1/localnetwork", "sdn", "ok", "pve1"), 1.0),
        (Resource("network/pve1/fabric/u", "network", "not ok", "pve1"), 0.0),
        (Resource("/pool/prod", "pool", pool="prod"), None),  # pools have no status
    ],
)
def test_resource_up(resource: Resource, up: float | None) -> None:
    metrics, _ = make()
    polled(metrics, snapshot(resource))
    samples = parse(scrape(metrics))
    assert [s.value for s in select(samples, "pvewatch_resource_up", id=resource.id)] == (
        [] if up is None else [up]
    )
    assert len(select(samples, "pvewatch_resource_info", id=resource.id)) == 1


@pytest.mark.parametrize(
    ("resource", "name"),
    [
        (guest(100), "vm100"),
        (Resource("node/pve1", "node", "online", "pve1"), "pve1"),
        (
            Resource("storage/pve1/nfs", "storage", "available", "pve1", attrs={"storage": "nfs"}),
            "nfs",
        ),
        (Resource("sdn/pve1/lab", "sdn", "ok", "pve1", attrs={"sdn": "lab"}), "lab"),
        (Resource("network/pve1/zone/z", "network", "ok", "pve1", attrs={"network": "z"}), "z"),
        (Resource("/pool/dept/team", "pool", pool="dept/team"), "dept/team"),
        (Resource("qemu/101", "qemu", "unknown", "pve1", None, 101), ""),
    ],
)
def test_every_resource_has_a_name_label(resource: Resource, name: str) -> None:
    metrics, _ = make()
    polled(metrics, snapshot(resource))
    (info,) = select(parse(scrape(metrics)), "pvewatch_resource_info", id=resource.id)
    assert info.labels["name"] == name


def test_labels_are_inline_so_alerts_need_no_join() -> None:
    metrics, _ = make()
    vm = guest(100, pool="prod", tags=("web", "db"), lock="backup", hastate="started")
    polled(
        metrics,
        snapshot(vm, Resource("qemu/102", "qemu", "stopped", "pve2", "t", 102, template=True)),
    )
    samples = parse(scrape(metrics))
    (up,) = select(samples, "pvewatch_resource_up", id="qemu/100")
    assert up.labels == {
        "cluster": "prod", "id": "qemu/100", "type": "qemu", "name": "vm100", "node": "pve1",
        "pool": "prod",
    }  # fmt: skip
    (info,) = select(samples, "pvewatch_resource_info", id="qemu/100")
    assert info.value == 1.0
    assert info.labels == up.labels | {
        "status": "running", "tags": "db;web", "template": "0", "hastate": "started",
        "lock": "backup",
    }  # fmt: skip
    assert select(samples, "pvewatch_resource_info", id="qemu/102")[0].labels["template"] == "1"


def test_removed_resources_lose_their_series_and_their_last_change() -> None:
    metrics, _ = make()
    a, b = guest(100), guest(101)
    polled(metrics, snapshot(a, b))
    polled(
        metrics, snapshot(a, guest(101, "stopped")), [event("guest.stopped", b, Severity.WARNING)]
    )
    changed = select(parse(scrape(metrics)), "pvewatch_resource_last_change_timestamp_seconds")
    assert [(s.labels["id"], s.value) for s in changed] == [("qemu/101", T0.timestamp())]
    polled(metrics, snapshot(a), [event("guest.removed", b, Severity.WARNING)])
    text = scrape(metrics)
    assert 'id="qemu/101"' not in text
    assert 'id="qemu/100"' in text


def test_cluster_quorum_and_nodes_online() -> None:
    metrics, _ = make()
    nodes = [
        Resource(f"node/pve{i}", "node", s, f"pve{i}")
        for i, s in enumerate(["online", "online", "offline"])
    ]
    polled(metrics, snapshot(*nodes, quorate=False))
    samples = parse(scrape(metrics))
    assert value(samples, "pvewatch_cluster_quorate", cluster="prod") == 0.0
    assert value(samples, "pvewatch_cluster_nodes_online", cluster="prod") == 2.0
    polled(metrics, snapshot(*nodes, quorate=None))  # quorum unknown: no series rather than a guess
    assert select(parse(scrape(metrics)), "pvewatch_cluster_quorate") == []


def test_poll_outcomes() -> None:
    metrics, clocks = make()
    samples = parse(scrape(metrics))
    # Before any poll: the success counter exists at 0, no success time, source state unknown.
    assert value(samples, "pvewatch_polls_total", cluster="prod", result="success") == 0.0
    assert value(samples, "pvewatch_last_successful_poll_timestamp_seconds", cluster="lab") == 0.0
    assert select(samples, "pvewatch_source_up") == []
    polled(metrics, snapshot(guest(100)))
    success_at = clocks.wall
    clocks.advance(10)
    for kind in ("unreachable", "unreachable", "store"):
        metrics.poll_finished(
            "prod", ok=False, duration_secs=3.0, snapshot=None, events=[], error_kind=kind
        )
    samples = parse(scrape(metrics))
    assert value(samples, "pvewatch_polls_total", cluster="prod", result="success") == 1.0
    assert value(samples, "pvewatch_polls_total", cluster="prod", result="unreachable") == 2.0
    assert value(samples, "pvewatch_polls_total", cluster="prod", result="store") == 1.0
    assert value(samples, "pvewatch_source_up", cluster="prod") == 0.0
    assert (
        value(samples, "pvewatch_last_successful_poll_timestamp_seconds", cluster="prod")
        == success_at
    )
    assert value(samples, "pvewatch_poll_duration_seconds_count", cluster="prod") == 4.0
    assert value(samples, "pvewatch_poll_duration_seconds_sum", cluster="prod") == pytest.approx(
        9.2
    )
    assert value(samples, "pvewatch_poll_duration_seconds_bucket", cluster="prod", le="0.25") == 1.0
    assert value(samples, "pvewatch_poll_duration_seconds_bucket", cluster="prod", le="+Inf") == 4.0
    # The last committed snapshot still shows: a failed poll is not an empty cluster.
    assert len(select(samples, "pvewatch_resource_info")) == 1


def test_events_are_counted_by_type_and_severity() -> None:
    metrics, _ = make()
    vm = guest(100)
    events = [event("guest.stopped", vm, Severity.WARNING)] * 2 + [event("source.recovered", None)]
    polled(metrics, snapshot(vm), events)
    samples = parse(scrape(metrics))
    assert (
        value(
            samples,
            "pvewatch_events_total",
            cluster="prod",
            type="guest.stopped",
            severity="warning",
        )
        == 2.0
    )
    assert value(samples, "pvewatch_events_total", type="source.recovered", severity="info") == 1.0


def test_notifications_are_counted_by_source_type_and_result() -> None:
    metrics, _ = make()
    metrics.notification_received("pve", "vzdump", "accepted")
    metrics.notification_received("pve", "vzdump", "accepted")
    metrics.notification_received("unknown", "none", "unauthorized")
    samples = parse(scrape(metrics))
    name = "pvewatch_notifications_received_total"
    assert value(samples, name, source="pve", type="vzdump", result="accepted") == 2.0
    assert value(samples, name, source="unknown", type="none", result="unauthorized") == 1.0


def test_events_recorded_outside_a_poll_are_counted() -> None:
    metrics, _ = make()
    metrics.events_recorded([event("backup.failed", None, Severity.CRITICAL)])
    samples = parse(scrape(metrics))
    total = "pvewatch_events_total"
    assert value(samples, total, cluster="prod", type="backup.failed", severity="critical") == 1


def test_a_prometheus_sink_picks_the_counted_events_and_the_state_series() -> None:
    sink = SinkConfig("prom", "prometheus", PrometheusOptions(False), SinkFilter(types=("node.*",)))
    options = MetricsOptions.from_sinks([SinkConfig("console", "log", LogOptions()), sink])
    assert options == MetricsOptions(state_metrics=False, counting=(sink,))
    metrics, _ = make(options)
    node, vm = Resource("node/pve1", "node", "offline", "pve1"), guest(100)
    polled(metrics, snapshot(node, vm), [event("node.offline", node), event("guest.stopped", vm)])
    samples = parse(scrape(metrics))
    assert [s.labels["type"] for s in select(samples, "pvewatch_events_total")] == ["node.offline"]
    assert [s for s in samples if s.name.startswith("pvewatch_resource_")] == []


def test_without_a_prometheus_sink_everything_is_exposed() -> None:
    assert (
        MetricsOptions.from_sinks([SinkConfig("console", "log", LogOptions())]) == MetricsOptions()
    )


def test_deliveries_sinks_and_the_outbox() -> None:
    store = FakeOutbox()
    metrics, clocks = make(store=store)
    metrics.sink_enabled("console", True)
    metrics.delivery_finished("console", outcome="delivered", duration_secs=0.02)
    metrics.delivery_finished("console", outcome="retry", duration_secs=2.0)
    samples = parse(scrape(metrics))
    assert {s.labels["outcome"]: s.value for s in select(samples, "pvewatch_deliveries_total")} == {
        "delivered": 1.0, "retry": 1.0, "dead": 0.0,
    }  # fmt: skip
    assert value(samples, "pvewatch_delivery_duration_seconds_count", sink="console") == 2.0
    assert value(samples, "pvewatch_sink_enabled", sink="console") == 1.0
    assert value(samples, "pvewatch_outbox_pending", sink="console") == 3.0
    assert value(samples, "pvewatch_dead_letters", sink="console") == 1.0
    # Counted at most once a second however often it is scraped.
    store.pending["console"] = 7
    scrape(metrics)
    assert (store.calls, value(parse(scrape(metrics)), "pvewatch_outbox_pending")) == (1, 3.0)
    clocks.advance(1.5)
    assert value(parse(scrape(metrics)), "pvewatch_outbox_pending") == 7.0
    # A store that cannot answer leaves the series out; the scrape still works.
    store.fail = True
    clocks.advance(1.5)
    assert select(parse(scrape(metrics)), "pvewatch_outbox_pending") == []
    metrics.sink_enabled("console", False)
    assert value(parse(scrape(metrics)), "pvewatch_sink_enabled", sink="console") == 0.0


def test_no_created_series_and_build_info() -> None:
    metrics, _ = make(store=FakeOutbox())
    polled(metrics, snapshot(guest(100)), [event("guest.started", guest(100))])
    metrics.delivery_finished("console", outcome="delivered", duration_secs=0.01)
    text = scrape(metrics)
    assert "_created" not in text
    (build,) = select(parse(text), "pvewatch_build_info")
    assert build.labels == {"version": __import__("pvewatch").__version__}
    assert "process_cpu_seconds_total" in text


def test_openmetrics_when_asked_for() -> None:
    metrics, _ = make()
    polled(metrics, snapshot(guest(100)))
    body, content_type = metrics.render("application/openmetrics-text; version=1.0.0,*/*;q=0.1")
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    text = body.decode()
    assert text.endswith("# EOF\n")
    assert "# TYPE pvewatch_resource info" in text
    assert "_created" not in text


def test_promtool_finds_nothing_to_complain_about() -> None:
    metrics, _ = make(store=FakeOutbox())
    vm = guest(100, tags=('a"b\\c',))
    polled(
        metrics,
        snapshot(vm, Resource("node/pve1", "node", "online", "pve1")),
        [event("guest.tags_changed", vm)],
    )
    metrics.sink_enabled("console", True)
    metrics.delivery_finished("console", outcome="dead", duration_secs=40.0)
    assert promtool_check_metrics(scrape(metrics)) == ""


statuses = st.sampled_from(["running", "stopped", "online", "offline", "unknown", None])
resources = st.lists(
    st.builds(
        lambda vmid, status, name: Resource(f"qemu/{vmid}", "qemu", status, "pve1", name, vmid),
        st.integers(100, 10_000),
        statuses,
        st.text(max_size=8),
    ),
    max_size=40,
    unique_by=lambda r: r.id,
)


@given(resources, resources)
def test_series_follow_the_latest_snapshot(first: list[Resource], second: list[Resource]) -> None:
    metrics, _ = make()
    polled(metrics, snapshot(*first))
    polled(metrics, snapshot(*second))
    samples = parse(scrape(metrics))
    info = select(samples, "pvewatch_resource_info")
    assert sorted(s.labels["id"] for s in info) == sorted(r.id for r in second)
    assert {s.labels["id"]: s.labels["name"] for s in info} == {r.id: r.name or "" for r in second}
    assert len(select(samples, "pvewatch_resource_up")) == sum(r.status is not None for r in second)


def test_the_metric_reference_lists_every_metric_family() -> None:
    metrics, _ = make(store=FakeOutbox())
    polled(metrics, snapshot(guest(100)), [event("guest.started", guest(100))])
    ours = {f for f in families(scrape(metrics)) if f.startswith("pvewatch_")}
    section = METRICS_DOC.read_text().split("\n## Metric reference", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(pvewatch_[a-z_]+)`", section, flags=re.MULTILINE))
    assert documented == ours


def _promtool(*args: str) -> str:
    done = subprocess.run([promtool(), *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_documented_alerts_are_valid_rules_on_real_series(tmp_path: Path) -> None:
    section = METRICS_DOC.read_text().split("## Ready-made alerts", 1)[1]
    rules = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "rules.yml").write_text(rules)
    _promtool("check", "rules", str(tmp_path / "rules.yml"))
    metrics, _ = make(store=FakeOutbox())
    polled(metrics, snapshot(guest(100)))
    exposed = families(scrape(metrics)) | {"up"}
    for expr in re.findall(r"expr: (.+)", rules):
        for name in re.findall(r"\b(pvewatch_[a-z_]+|up)\{?", expr):
            assert name in exposed, (name, expr)


def test_the_deploy_scrape_config_is_valid() -> None:
    _promtool("check", "config", str(METRICS_DOC.parents[1] / "deploy/prometheus/prometheus.yml"))


def test_a_reload_keeps_the_series_of_what_stays_and_drops_the_rest() -> None:
    store = FakeOutbox()
    store.pending["hook"] = 2
    metrics, clocks = make(store=store)
    polled(metrics, snapshot(guest(100)), [event("guest.started", guest(100))])
    metrics.poll_finished(
        "lab", ok=True, duration_secs=1, snapshot=None, events=[], error_kind=None
    )
    metrics.delivery_finished("console", outcome="delivered", duration_secs=0.01)
    metrics.sink_enabled("console", True)
    clocks.advance(5)
    # lab and console go, prod stays (polled every 30 s now), dev and hook come.
    metrics.reconfigure(clusters={"prod": 30.0, "dev": 1.0}, sinks=["hook"], store=store)
    metrics.config_reloaded(True)
    samples = parse(scrape(metrics))
    assert {s.labels["cluster"] for s in select(samples, "pvewatch_polls_total")} == {"prod", "dev"}
    assert value(samples, "pvewatch_polls_total", cluster="prod", result="success") == 1.0
    assert value(samples, "pvewatch_events_total", cluster="prod") == 1.0
    assert len(select(samples, "pvewatch_resource_up", cluster="prod")) == 1
    assert {s.labels["sink"] for s in select(samples, "pvewatch_deliveries_total")} == {"hook"}
    assert select(samples, "pvewatch_sink_enabled") == []
    assert value(samples, "pvewatch_outbox_pending") == 2.0  # hook's, counted afresh
    assert value(samples, "pvewatch_config_last_reload_successful") == 1.0
    assert value(samples, "pvewatch_config_last_reload_success_timestamp_seconds") == clocks.wall
    # A rejected reload: 0, and the time of the last one applied stays.
    clocks.advance(5)
    metrics.config_reloaded(False)
    samples = parse(scrape(metrics))
    assert value(samples, "pvewatch_config_last_reload_successful") == 0.0
    assert value(samples, "pvewatch_config_last_reload_success_timestamp_seconds") == (
        clocks.wall - 5
    )


def test_leadership_shows_in_a_gauge() -> None:
    metrics, _ = make()
    samples = parse(scrape(metrics))
    assert value(samples, "pvewatch_cluster_leader", cluster="prod") == 1.0  # one replica
    metrics.poll_finished(
        "prod", ok=False, duration_secs=0, snapshot=None, events=[], error_kind="store"
    )
    metrics.leader_changed("prod", False)  # another replica took it over
    samples = parse(scrape(metrics))
    assert value(samples, "pvewatch_cluster_leader", cluster="prod") == 0.0
    assert value(samples, "pvewatch_cluster_leader", cluster="lab") == 1.0
