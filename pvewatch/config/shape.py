"""`rules.shape:` in watch.yaml — the keys of the shaping step (`pvewatch.watch.shape`):

    rules:
      shape:
        hold:                      # per event type: how long a transition must last
                                   # (`hold: false`: no holds at all)
          guest.stopped: {for_secs: 30}
          node.offline: {for_secs: 60}
        flapping:                  # `flapping: false` turns flapping detection off
          transitions: 5           # more than this many status changes of one resource
          window_secs: 600         # within this long is flapping;
          stable_secs: 300         # it ends after this long without a change
        repeat_interval_secs: 0    # > 0: re-send a problem still open this often

A type named under `hold` replaces its default (`{for_secs: 0}` sends at once); the other
types keep theirs (`DEFAULT_HOLD_SECS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from pvewatch.config.reading import Ctx, get_integer, get_mapping, get_number, join
from pvewatch.model import EVENT_TYPES

# pvestatd refreshes guest, node and storage status every 10 s, so a state that lasts less
# than about two of its cycles is usually a restart (reboot, stop-mode backup, HA relocate)
# or a blip (NFS hiccup, corosync retransmit) and not worth waking anyone. A node gets
# longer: corosync marks a node offline within seconds of a short network partition.
# Recoveries (started, online, available) and informational changes are sent at once.
DEFAULT_HOLD_SECS: Mapping[str, float] = MappingProxyType(
    {
        "guest.stopped": 30.0,
        "guest.paused": 30.0,
        "guest.status_changed": 30.0,
        "node.offline": 60.0,
        "node.status_changed": 60.0,
        "storage.unavailable": 30.0,
    }
)
_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class FlappingConfig:
    transitions: int = 5  # more than this many status changes within window_secs: flapping
    window_secs: float = 600.0
    stable_secs: float = 300.0  # flapping ends after this long without a status change


@dataclass(frozen=True, slots=True)
class ShapeConfig:
    # for_secs per event type; types not listed are sent at once.
    hold_secs: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_HOLD_SECS))
    flapping: FlappingConfig | None = field(default_factory=FlappingConfig)  # None: off
    repeat_interval_secs: float | None = None  # None: no reminders


_SHAPE_KEYS = frozenset({"hold", "flapping", "repeat_interval_secs"})
_HOLD_KEYS = frozenset({"for_secs"})
_FLAPPING_KEYS = frozenset({"transitions", "window_secs", "stable_secs"})


def shape_section(ctx: Ctx, value: object, path: str = "rules.shape") -> ShapeConfig:
    """`rules.shape` (absent: the defaults)."""
    m = {} if value is None else get_mapping(ctx, path, value, _SHAPE_KEYS)
    if m is None:
        return ShapeConfig()
    repeat = get_number(
        ctx, join(path, "repeat_interval_secs"), m.get("repeat_interval_secs"), 0.0, (0, _DAY, True)
    )
    return ShapeConfig(
        hold_secs=_hold(ctx, join(path, "hold"), m.get("hold")),
        flapping=_flapping(ctx, join(path, "flapping"), m.get("flapping")),
        repeat_interval_secs=repeat or None,
    )


def _hold(ctx: Ctx, path: str, value: object) -> dict[str, float]:
    if value is False:
        return {}
    hold = dict(DEFAULT_HOLD_SECS)
    m = {} if value is None else get_mapping(ctx, path, value, frozenset(EVENT_TYPES))
    for type_, item in (m or {}).items():
        where = join(path, type_)
        entry = get_mapping(ctx, where, item, _HOLD_KEYS)
        if entry is None:
            continue
        if entry.get("for_secs") is None:
            ctx.add(join(where, "for_secs"), "required: seconds, e.g. {for_secs: 30}")
            continue
        hold[type_] = get_number(
            ctx, join(where, "for_secs"), entry["for_secs"], 0.0, (0, _DAY, True)
        )
    return {t: secs for t, secs in hold.items() if secs > 0}


def _flapping(ctx: Ctx, path: str, value: object) -> FlappingConfig | None:
    if value is False:
        return None
    if value is None or value is True:
        return FlappingConfig()
    m = get_mapping(ctx, path, value, _FLAPPING_KEYS)
    if m is None:
        return FlappingConfig()
    default = FlappingConfig()
    return FlappingConfig(
        transitions=get_integer(
            ctx, join(path, "transitions"), m.get("transitions"), default.transitions, 1, 1000
        ),
        window_secs=get_number(
            ctx,
            join(path, "window_secs"),
            m.get("window_secs"),
            default.window_secs,
            (0, _DAY, False),
        ),
        stable_secs=get_number(
            ctx,
            join(path, "stable_secs"),
            m.get("stable_secs"),
            default.stable_secs,
            (0, _DAY, False),
        ),
    )
