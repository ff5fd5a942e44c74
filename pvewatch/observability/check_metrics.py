"""The health checks' series (pvewatch.checking), a collector on the `Metrics` registry:
each check's last run, and what its last reading showed.

    pvewatch_check_up{cluster,check}                  1: read (up or idle), 0: failing or disabled
    pvewatch_check_enabled{cluster,check}             0 once a 403 disabled it
    pvewatch_check_last_run_timestamp_seconds{cluster,check}
    pvewatch_check_requests_total{cluster,check}      API requests made by the check
    pvewatch_check_open_problems{cluster,check}       things found bad at the last reading
    pvewatch_ha_resource_error{cluster,sid}           1: in error or fence
    pvewatch_ceph_health{cluster}                     0 OK, 1 WARN, 2 ERR
    pvewatch_ceph_check{cluster,code,severity,muted}  1 per raised health check
    pvewatch_replication_fail_count{cluster,job,guest,target}
    pvewatch_qdevice_connected{cluster}
    pvewatch_certificate_expiry_timestamp_seconds{cluster,node,file}
    pvewatch_disk_healthy{cluster,node,disk}          0: SMART not PASSED/OK
    pvewatch_zfs_pool_online{cluster,node,pool}
    pvewatch_backup_guests_not_covered{cluster}, pvewatch_backup_guests_stale{cluster}

Per guest there is no series (10,000 guests): the events name them.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

_CEPH = {"HEALTH_OK": 0.0, "HEALTH_WARN": 1.0, "HEALTH_ERR": 2.0}


class CheckMetrics(Collector):
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._runs: dict[tuple[str, str], tuple[str, float]] = {}
        self._requests: Counter[tuple[str, str]] = Counter()
        self._readings: dict[tuple[str, str], Mapping[str, Any]] = {}

    def check_finished(self, cluster: str, check: str, status: str, requests: int,
                       gauges: Mapping[str, Any]) -> None:  # fmt: skip
        """After each run: its status, its requests, what it read (`CheckResult.gauges`)."""
        if status == "standby":
            return
        with self._lock:
            self._runs[(cluster, check)] = (status, self._clock())
            self._requests[(cluster, check)] += requests
            if status in ("up", "idle"):
                self._readings[(cluster, check)] = gauges
            elif status == "disabled":
                self._readings.pop((cluster, check), None)

    def forget(self, keep: Iterable[tuple[str, str]]) -> None:
        """After a reload: only the (cluster, check) pairs still configured."""
        wanted = set(keep)
        with self._lock:
            for table in (self._runs, self._readings):
                for key in [k for k in table if k not in wanted]:
                    del table[key]

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            runs = dict(self._runs)
            requests = dict(self._requests)
            readings = dict(self._readings)
        pair = ("cluster", "check")
        up = GaugeMetricFamily(
            "pvewatch_check_up", "1 if the check's last run read its answers", labels=pair
        )
        enabled = GaugeMetricFamily(
            "pvewatch_check_enabled", "0 once a 403 disabled the check", labels=pair
        )
        last = GaugeMetricFamily(
            "pvewatch_check_last_run_timestamp_seconds", "When the check last ran", labels=pair
        )
        for (cluster, check), (status, at) in sorted(runs.items()):
            up.add_metric([cluster, check], float(status in ("up", "idle")))
            enabled.add_metric([cluster, check], float(status != "disabled"))
            last.add_metric([cluster, check], at)
        made = CounterMetricFamily(
            "pvewatch_check_requests", "PVE API requests made by the check", labels=pair
        )
        for key, n in sorted(requests.items()):
            made.add_metric(list(key), float(n))
        yield from (up, enabled, last, made)
        yield from _reading_families(readings)


def _reading_families(readings: Mapping[tuple[str, str], Mapping[str, Any]]) -> Iterable[Metric]:
    def gauge(name: str, doc: str, labels: tuple[str, ...]) -> GaugeMetricFamily:
        return GaugeMetricFamily(f"pvewatch_{name}", doc, labels=("cluster", *labels))

    problems = gauge(
        "check_open_problems", "Things the check found bad at its last run", ("check",)
    )
    ha = gauge("ha_resource_error", "1 if the HA resource is in error or fence", ("sid",))
    ceph = gauge("ceph_health", "Ceph health: 0 HEALTH_OK, 1 HEALTH_WARN, 2 HEALTH_ERR", ())
    ceph_check = gauge(
        "ceph_check", "1 per raised Ceph health check", ("code", "severity", "muted")
    )
    repl = gauge("replication_fail_count", "Failed attempts of the replication job",
                 ("job", "guest", "target"))  # fmt: skip
    qdev = gauge("qdevice_connected", "1 if the QDevice is connected", ())
    cert = gauge("certificate_expiry_timestamp_seconds", "When the node certificate expires",
                 ("node", "file"))  # fmt: skip
    disk = gauge("disk_healthy", "0 if the disk's SMART health is not PASSED/OK", ("node", "disk"))
    pool = gauge("zfs_pool_online", "1 if the ZFS pool is ONLINE", ("node", "pool"))
    uncovered = gauge("backup_guests_not_covered", "Guests in no backup job", ())
    stale = gauge("backup_guests_stale", "Guests whose newest backup is too old", ())
    for (cluster, check), gauges in sorted(readings.items()):
        bad_count = 0
        counts = Counter[str]()
        for condition, (bad, _severity, details, ref) in sorted(gauges.items()):
            kind = condition.partition(":")[0]
            bad_count += bool(bad)
            node = ref.node or ""
            if kind == "ha.resource_error":
                ha.add_metric([cluster, ref.name or ref.id], float(bad))
            elif kind == "ceph.health":
                ceph.add_metric([cluster], _CEPH.get(str(details.get("status")), 1.0))
            elif kind == "ceph.check_raised":
                labels = [str(details.get(k)) for k in ("code", "severity")]
                ceph_check.add_metric(
                    [cluster, *labels, str(bool(details.get("muted"))).lower()], 1.0
                )
            elif kind == "replication.failed":
                labels = [str(details.get(k)) for k in ("job", "guest", "target")]
                repl.add_metric([cluster, *labels], float(details.get("fail_count") or 0))
            elif kind == "qdevice.disconnected":
                qdev.add_metric([cluster], float(not bad))
            elif kind == "certificate.expiring":
                cert.add_metric(
                    [cluster, node, ref.name or ""], float(details.get("notafter") or 0)
                )
            elif kind == "disk.failed":
                disk.add_metric([cluster, node, ref.name or ""], float(not bad))
            elif kind == "zfs.degraded":
                pool.add_metric([cluster, node, ref.name or ""], float(not bad))
            elif kind.startswith("backup."):
                counts[kind] += bool(bad)
        if check == "backups":
            uncovered.add_metric([cluster], float(counts["backup.not_covered"]))
            stale.add_metric([cluster], float(counts["backup.stale"]))
        problems.add_metric([cluster, check], float(bad_count))
    yield from (problems, ha, ceph, ceph_check, repl, qdev, cert, disk, pool, uncovered, stale)
