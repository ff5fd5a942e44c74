"""`checks:` of a cluster — the health checks beside the poll (`pvewatch.checking`):

    clusters:
      - name: lab
        checks:
          ha: true                       # true: on with its defaults; false: off
          ceph: {interval_secs: 60}
          certificates: {warn_days: 30, critical_days: 7}
          backups: {max_age_hours: 26}

Every check is on by default (a feature that is not set up costs one cheap request and
stays quiet); `checks: false` turns them all off. Each has `interval_secs`; the defaults
(`CHECKS`) read cluster-wide answers every 30 s, per-node ones every few minutes and
certificates and backups hourly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from pvewatch.config.reading import Ctx, get_mapping, get_number, join, kind

_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """What a check reads and needs, for the config, the docs and `check-config --connect`."""

    name: str
    interval_secs: float  # the default
    endpoints: str  # what it reads
    privilege: str  # what the token needs
    per_node: bool  # one request (or two) per online node


CHECKS: Mapping[str, CheckSpec] = MappingProxyType(
    {
        s.name: s
        for s in (
            CheckSpec(
                "ha", 30, "/cluster/ha/status/current + manager_status", "Sys.Audit on /", False
            ),
            CheckSpec(
                "ceph", 30, "/cluster/ceph/status", "Sys.Audit or Datastore.Audit on /", False
            ),
            CheckSpec(
                "replication", 300, "/nodes/{node}/replication", "VM.Audit on the guests", True
            ),
            CheckSpec("qdevice", 30, "/cluster/config/qdevice", "Sys.Audit on /", False),
            CheckSpec("certificates", 3600, "/nodes/{node}/certificates/info", "any user", True),
            CheckSpec(
                "disks", 1800, "/nodes/{node}/disks/list + /disks/zfs", "Sys.Audit on /", True
            ),
            CheckSpec(
                "backups",
                3600,
                "/cluster/backup-info/not-backed-up, /cluster/backup, backup storage content",
                "Sys.Audit on /, Datastore.Audit + VM.Backup on the backup storages",
                False,
            ),
        )
    }
)


@dataclass(frozen=True, slots=True)
class CheckConfig:
    name: str
    interval_secs: float
    warn_days: float = 30.0  # certificates: expiring within this many days is a warning
    critical_days: float = 7.0  # certificates: within this many, critical
    max_age_hours: float = 26.0  # backups: a newer backup than this is expected


_OPTIONS: Mapping[str, frozenset[str]] = {
    "certificates": frozenset({"warn_days", "critical_days"}),
    "backups": frozenset({"max_age_hours"}),
}


def default_checks() -> tuple[CheckConfig, ...]:
    return tuple(CheckConfig(s.name, s.interval_secs) for s in CHECKS.values())


def checks_section(ctx: Ctx, path: str, value: object) -> tuple[CheckConfig, ...]:
    """The enabled checks of a cluster (absent: all of them with their defaults)."""
    if value is None or value is True:
        return default_checks()
    if value is False:
        return ()
    m = get_mapping(ctx, path, value, frozenset(CHECKS))
    if m is None:
        return default_checks()
    found = []
    for name, spec in CHECKS.items():
        item = m.get(name, True)
        where = join(path, name)
        if item is False:
            continue
        if item is True or item is None:
            found.append(CheckConfig(name, spec.interval_secs))
            continue
        if not isinstance(item, dict):
            ctx.add(where, f"expected true, false or a mapping, got {kind(item)}")
            continue
        found.append(_check(ctx, where, spec, item))
    return tuple(found)


def _check(ctx: Ctx, path: str, spec: CheckSpec, item: object) -> CheckConfig:
    keys = frozenset({"interval_secs"}) | _OPTIONS.get(spec.name, frozenset())
    m = get_mapping(ctx, path, item, keys) or {}
    interval = get_number(
        ctx,
        join(path, "interval_secs"),
        m.get("interval_secs"),
        spec.interval_secs,
        (1, _DAY, True),
    )
    default = CheckConfig(spec.name, interval)
    warn = get_number(
        ctx, join(path, "warn_days"), m.get("warn_days"), default.warn_days, (0, 3650, True)
    )
    critical = get_number(
        ctx,
        join(path, "critical_days"),
        m.get("critical_days"),
        default.critical_days,
        (0, 3650, True),
    )
    if critical > warn:
        ctx.add(join(path, "critical_days"), f"must not exceed warn_days ({warn:g})")
    age = get_number(
        ctx,
        join(path, "max_age_hours"),
        m.get("max_age_hours"),
        default.max_age_hours,
        (0, 24 * 3650, False),
    )
    return CheckConfig(spec.name, interval, warn, critical, age)
