"""`rules.shape` of watch.yaml: holds, flapping, reminders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pvewatch.config.shape import DEFAULT_HOLD_SECS, FlappingConfig, ShapeConfig
from tests.config.support import assert_reported, base, load


def shape_of(tmp_path: Path, shape: Any) -> ShapeConfig:
    return load(tmp_path, base() | {"rules": {"shape": shape}}).rules.shape


def test_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, base()).rules.shape
    assert config == ShapeConfig()
    assert config.hold_secs == DEFAULT_HOLD_SECS
    assert config.flapping == FlappingConfig(transitions=5, window_secs=600, stable_secs=300)
    assert config.repeat_interval_secs is None


def test_every_key(tmp_path: Path) -> None:
    config = shape_of(
        tmp_path,
        {
            "hold": {"guest.stopped": {"for_secs": 5}, "node.offline": {"for_secs": 0}},
            "flapping": {"transitions": 3, "window_secs": 120, "stable_secs": 60},
            "repeat_interval_secs": 3600,
        },
    )
    # A type named replaces its default; 0 sends at once; the others keep theirs.
    assert config.hold_secs == {
        **{t: s for t, s in DEFAULT_HOLD_SECS.items() if t != "node.offline"},
        "guest.stopped": 5,
    }
    assert config.flapping == FlappingConfig(3, 120, 60)
    assert config.repeat_interval_secs == 3600


def test_off_switches(tmp_path: Path) -> None:
    config = shape_of(tmp_path, {"hold": False, "flapping": False, "repeat_interval_secs": 0})
    assert config == ShapeConfig(hold_secs={}, flapping=None, repeat_interval_secs=None)


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ({"hold": {"guest.stoped": {"for_secs": 5}}},
         "rules.shape.hold.guest.stoped: unknown key (did you mean guest.stopped?)"),
        ({"hold": {"guest.stopped": 30}}, "rules.shape.hold.guest.stopped: expected a mapping"),
        ({"hold": {"guest.stopped": {}}}, "rules.shape.hold.guest.stopped.for_secs: required"),
        ({"hold": {"guest.stopped": {"for_secs": -1}}},
         "rules.shape.hold.guest.stopped.for_secs: expected a number >= 0"),
        ({"flapping": {"transitions": 0}}, "rules.shape.flapping.transitions"),
        ({"flapping": {"window_secs": 0}},
         "rules.shape.flapping.window_secs: expected a number > 0"),
        ({"flapping": "often"}, "rules.shape.flapping: expected a mapping"),
        ({"repeat_interval_secs": "1h"}, "rules.shape.repeat_interval_secs: expected a number"),
        ({"holds": {}}, "rules.shape.holds: unknown key (did you mean hold?)"),
    ],
)  # fmt: skip
def test_problems_name_their_key(tmp_path: Path, shape: Any, expected: str) -> None:
    assert_reported(tmp_path, base() | {"rules": {"shape": shape}}, expected)
