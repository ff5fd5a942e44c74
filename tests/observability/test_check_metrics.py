"""The health checks' series: each check's last run, and what its last reading showed,
built from real readings (the captured Ceph answer, replication, certificates, disks)."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from pvewatch.checking import gauges
from pvewatch.observability.metrics import Metrics
from pvewatch.watch.checks import findings, nodes
from tests.simulator.shapes import captured


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = metrics.render(None)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_each_check_shows_its_status_its_requests_and_what_it_read() -> None:
    metrics = Metrics(clusters={"lab": 10.0}, sinks=[], clock=lambda: 1000.0)
    ceph = findings.ceph("lab", captured("go-proxmox-pve8x-cluster-ceph-status.json")["data"])
    row = {"id": "100-0", "guest": 100, "target": "pve2", "fail_count": 4, "error": "x"}
    repl = findings.replication({"pve1": [row]}, {}, frozenset())
    disks = nodes.disks(
        {"pve1": [{"devpath": "/dev/sda", "health": "FAILED!"}]},
        {"pve1": [{"name": "rpool", "health": "ONLINE"}]},
        frozenset(),
    )
    cert = [{"filename": "pve-ssl.pem", "notafter": 1_800_000_000}]
    certs = nodes.certificates({"pve1": cert}, datetime(2026, 1, 1, tzinfo=UTC), 30, 7,
                               frozenset())  # fmt: skip
    for name, reading, requests in (("ceph", ceph, 1), ("replication", repl, 3),
                                    ("disks", disks, 2), ("certificates", certs, 3)):  # fmt: skip
        metrics.checks.check_finished("lab", name, "up", requests, gauges(reading))
    metrics.checks.check_finished("lab", "ha", "disabled", 1, {})
    metrics.checks.check_finished("lab", "qdevice", "failing", 1, {})
    metrics.checks.check_finished("lab", "replication", "up", 3, gauges(repl))
    found = samples(metrics)

    def value(name: str, **labels: str) -> float | None:
        return found.get((name, tuple(sorted({"cluster": "lab", **labels}.items()))))

    assert value("pvewatch_check_up", check="ceph") == 1
    assert value("pvewatch_check_up", check="ha") == 0
    assert value("pvewatch_check_up", check="qdevice") == 0
    assert value("pvewatch_check_enabled", check="ha") == 0
    assert value("pvewatch_check_enabled", check="qdevice") == 1
    assert value("pvewatch_check_requests_total", check="replication") == 6
    assert value("pvewatch_check_last_run_timestamp_seconds", check="disks") == 1000
    assert value("pvewatch_ceph_health") == 1
    assert value("pvewatch_ceph_check", code="OSD_NEARFULL", severity="HEALTH_WARN",
                 muted="false") == 1  # fmt: skip
    assert value("pvewatch_replication_fail_count", job="100-0", guest="100", target="pve2") == 4
    assert value("pvewatch_disk_healthy", node="pve1", disk="sda") == 0
    assert value("pvewatch_zfs_pool_online", node="pve1", pool="rpool") == 1
    assert value("pvewatch_certificate_expiry_timestamp_seconds", node="pve1",
                 file="pve-ssl.pem") == 1_800_000_000  # fmt: skip
    assert value("pvewatch_check_open_problems", check="ceph") == 3
    metrics.checks.forget([("lab", "ceph")])
    assert value("pvewatch_check_up", check="ceph") == 1
    after = samples(metrics)
    assert not [k for k in after if k[0] == "pvewatch_disk_healthy"]
