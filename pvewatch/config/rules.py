"""The rule sections of watch.yaml: `expect:`, `maintenance:`, `rules:` and `thresholds:`,
gathered in one `RulesConfig` that `pvewatch.watch.rules.apply_rules` takes.

- `expect:` a list of selectors of guests that should be running. An entry matches a
  guest when every key it gives matches (`tag`, `pool`, `vmid`, `name` glob, `hastate`,
  `cluster`, or `all: true`); a guest is expected running when any entry matches. Absent:
  `[{hastate: started}]` (HA already says those guests should run); `[]`: none.
- `maintenance:` `tag` (default `maintenance`, `""` turns it off) on a guest or node, and
  `ha_maintenance` (default true): a node in HA maintenance mode.
- `rules:` `tasks` (task.failed / task.warnings, the log tail, the task types never
  reported: `ignore_types`) and `shape` (hold, flapping, reminders, inhibition:
  `ShapeConfig`, the shaping step's own keys).
- `thresholds:` `cpu`, `memory`, `disk` (guests and nodes) and `storage`, each
  `{trigger, clear, for_secs}`; none by default.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pvewatch.config.reading import (
    Ctx,
    get_bool,
    get_integer,
    get_mapping,
    get_number,
    get_str,
    join,
    kind,
    quote,
)
from pvewatch.config.shape import ShapeConfig as ShapeConfig  # re-exported: RulesConfig.shape
from pvewatch.config.shape import shape_section

DEFAULT_MAINTENANCE_TAG = "maintenance"
# Console sessions: a browser tab closed or a viewer that never connected ends them with
# an error ("connection timed out", "failed: exit code 4"), which is no failure of the
# cluster. PVE names them vncproxy (a guest's noVNC or xterm.js console), spiceproxy (a
# guest's SPICE console), vncshell (a node's shell), spiceshell (a node's SPICE shell);
# termproxy is what PBS and PMG call a shell.
CONSOLE_TASK_TYPES = ("vncproxy", "spiceproxy", "vncshell", "spiceshell", "termproxy")
THRESHOLD_METRICS = ("cpu", "memory", "disk", "storage")


@dataclass(frozen=True, slots=True)
class ExpectRule:
    """One `expect:` entry; every field given must match (None/empty: any)."""

    cluster: str | None = None
    tag: str | None = None
    pool: str | None = None
    vmids: tuple[int, ...] = ()
    name: str | None = None  # a glob, e.g. "web*"
    hastate: str | None = None
    all: bool = False


@dataclass(frozen=True, slots=True)
class MaintenanceConfig:
    tag: str | None = DEFAULT_MAINTENANCE_TAG  # None: tags do not mean maintenance
    ha_maintenance: bool = True


@dataclass(frozen=True, slots=True)
class TaskRules:
    failed: bool = True  # task.failed for finished tasks whose status is an error
    warnings: bool = True  # task.warnings for "WARNINGS: n"
    log_lines: int = 20  # lines of the task log's tail carried in the event
    logs_per_poll: int = 5  # task logs fetched per poll at most; later ones carry none
    ignore_types: frozenset[str] = frozenset(CONSOLE_TASK_TYPES)  # never reported


@dataclass(frozen=True, slots=True)
class Threshold:
    trigger: float  # a usage ratio, 0..1: at or above it (for for_secs) fires
    clear: float  # at or below it (for for_secs) clears; below trigger (hysteresis)
    for_secs: float = 60.0


@dataclass(frozen=True, slots=True)
class RulesConfig:
    expect: tuple[ExpectRule, ...] = (ExpectRule(hastate="started"),)
    maintenance: MaintenanceConfig = field(default_factory=MaintenanceConfig)
    tasks: TaskRules = field(default_factory=TaskRules)
    shape: ShapeConfig = field(default_factory=ShapeConfig)
    # Keyed by metric: "cpu", "memory", "disk", "storage". Empty: thresholds are off.
    thresholds: dict[str, Threshold] = field(default_factory=dict)


_EXPECT_KEYS = frozenset({"cluster", "tag", "pool", "vmid", "name", "hastate", "all"})
_MAINTENANCE_KEYS = frozenset({"tag", "ha_maintenance"})
_RULES_KEYS = frozenset({"tasks", "shape"})
_TASK_KEYS = frozenset({"failed", "warnings", "log_lines", "logs_per_poll", "ignore_types"})
_THRESHOLD_KEYS = frozenset({"trigger", "clear", "for_secs"})
_DAY = 86_400.0


def rules_sections(
    ctx: Ctx, expect: object, maintenance: object, rules: object, thresholds: object
) -> RulesConfig:
    """The four top-level rule sections (each may be absent)."""
    m = {} if rules is None else get_mapping(ctx, "rules", rules, _RULES_KEYS) or {}
    return RulesConfig(
        expect=RulesConfig().expect if expect is None else _expect(ctx, expect),
        maintenance=_maintenance(ctx, maintenance),
        tasks=_tasks(ctx, m.get("tasks")),
        shape=_shape(ctx, m.get("shape")),
        thresholds=_thresholds(ctx, thresholds),
    )


def _expect(ctx: Ctx, value: object) -> tuple[ExpectRule, ...]:
    if not isinstance(value, list):
        ctx.add("expect", f"expected a list of guest selectors, got {kind(value)}")
        return ()
    rules = []
    for i, item in enumerate(value):
        path = f"expect[{i}]"
        m = get_mapping(ctx, path, item, _EXPECT_KEYS)
        if m is None:
            continue
        if not m:
            ctx.add(path, "empty selector; say `all: true` to expect every guest running")
            continue
        everything = get_bool(ctx, join(path, "all"), m.get("all"), False)
        if "all" in m and not everything:
            ctx.add(join(path, "all"), "only `all: true` means something; remove it")
        rules.append(
            ExpectRule(
                cluster=_nonempty(ctx, join(path, "cluster"), m.get("cluster")),
                tag=_nonempty(ctx, join(path, "tag"), m.get("tag")),
                pool=_nonempty(ctx, join(path, "pool"), m.get("pool")),
                vmids=_vmids(ctx, join(path, "vmid"), m.get("vmid")),
                name=_nonempty(ctx, join(path, "name"), m.get("name")),
                hastate=_nonempty(ctx, join(path, "hastate"), m.get("hastate")),
                all=everything,
            )
        )
    return tuple(rules)


def _nonempty(ctx: Ctx, path: str, value: object) -> str | None:
    s = get_str(ctx, path, value)
    if s == "":
        ctx.add(path, "must not be empty")
    return s or None


def _vmids(ctx: Ctx, path: str, value: object) -> tuple[int, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    vmids = [get_integer(ctx, f"{path}[{i}]", v, 0, 100, 999_999_999) for i, v in enumerate(items)]
    return tuple(v for v in vmids if v)


def _maintenance(ctx: Ctx, value: object) -> MaintenanceConfig:
    m = {} if value is None else get_mapping(ctx, "maintenance", value, _MAINTENANCE_KEYS)
    if m is None:
        return MaintenanceConfig()
    tag = get_str(ctx, "maintenance.tag", m.get("tag"), DEFAULT_MAINTENANCE_TAG)
    return MaintenanceConfig(
        tag=tag.strip().lower() or None if tag is not None else None,
        ha_maintenance=get_bool(
            ctx, "maintenance.ha_maintenance", m.get("ha_maintenance"), default=True
        ),
    )


def _tasks(ctx: Ctx, value: object) -> TaskRules:
    m = {} if value is None else get_mapping(ctx, "rules.tasks", value, _TASK_KEYS)
    if m is None:
        return TaskRules()
    return TaskRules(
        failed=get_bool(ctx, "rules.tasks.failed", m.get("failed"), True),
        warnings=get_bool(ctx, "rules.tasks.warnings", m.get("warnings"), True),
        log_lines=get_integer(ctx, "rules.tasks.log_lines", m.get("log_lines"), 20, 0, 500),
        logs_per_poll=get_integer(
            ctx, "rules.tasks.logs_per_poll", m.get("logs_per_poll"), 5, 0, 100
        ),
        ignore_types=_task_types(ctx, "rules.tasks.ignore_types", m.get("ignore_types")),
    )


def _task_types(ctx: Ctx, path: str, value: object) -> frozenset[str]:
    """A list of task types (`[]`: report every type); absent: the console types."""
    if value is None:
        return TaskRules().ignore_types
    if not isinstance(value, list):
        ctx.add(path, f"expected a list of task types such as vncproxy, got {kind(value)}")
        return TaskRules().ignore_types
    types = set()
    for i, item in enumerate(value):
        name = get_str(ctx, f"{path}[{i}]", item)
        if name is None:
            continue
        if not name or any(c in name for c in ":/") or name != "".join(name.split()):
            ctx.add(f"{path}[{i}]", f"{quote(name)} is not a task type (no :, / or spaces)")
            continue
        types.add(name)
    return frozenset(types)


def _shape(ctx: Ctx, value: object) -> ShapeConfig:
    return shape_section(ctx, value, "rules.shape")


def _thresholds(ctx: Ctx, value: object) -> dict[str, Threshold]:
    m = {} if value is None else get_mapping(ctx, "thresholds", value, frozenset(THRESHOLD_METRICS))
    found: dict[str, Threshold] = {}
    for metric, item in (m or {}).items():
        threshold = _threshold(ctx, join("thresholds", metric), item)
        if threshold is not None:
            found[metric] = threshold
    return found


def _threshold(ctx: Ctx, path: str, value: object) -> Threshold | None:
    m = get_mapping(ctx, path, value, _THRESHOLD_KEYS)
    if m is None:
        return None
    if m.get("trigger") is None:
        ctx.add(join(path, "trigger"), "required: a usage ratio such as 0.9")
        return None
    trigger = get_number(ctx, join(path, "trigger"), m.get("trigger"), 0.9, (0.0, 1.0, False))
    clear = get_number(
        ctx,
        join(path, "clear"),
        m.get("clear"),
        max(0.0, round(trigger - 0.05, 6)),
        (0.0, 1.0, True),
    )
    if clear >= trigger:
        ctx.add(join(path, "clear"), f"must be below trigger ({trigger:g}), got {clear:g}")
    for_secs = get_number(ctx, join(path, "for_secs"), m.get("for_secs"), 60.0, (0.0, _DAY, True))
    return Threshold(trigger=trigger, clear=min(clear, trigger), for_secs=for_secs)
