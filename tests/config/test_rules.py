"""The rule sections of watch.yaml: expect, maintenance, rules.tasks, thresholds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pvewatch.config.rules import (
    ExpectRule,
    MaintenanceConfig,
    RulesConfig,
    TaskRules,
    Threshold,
)

from .support import REPO, base, load, problems


def rules_of(tmp_path: Path, **sections: Any) -> RulesConfig:
    return load(tmp_path, base() | sections).rules


def test_defaults(tmp_path: Path) -> None:
    rules = rules_of(tmp_path)
    assert rules.expect == (ExpectRule(hastate="started"),)
    assert rules.maintenance == MaintenanceConfig(tag="maintenance", ha_maintenance=True)
    assert rules.tasks == TaskRules()
    assert rules.thresholds == {}


def test_every_key(tmp_path: Path) -> None:
    rules = rules_of(
        tmp_path,
        expect=[
            {"tag": "prod"},
            {"pool": "production", "cluster": "lab"},
            {"vmid": [100, 101]},
            {"vmid": 102},
            {"name": "web*"},
            {"hastate": "started"},
            {"all": True},
        ],
        maintenance={"tag": "Upkeep", "ha_maintenance": False},
        rules={
            "tasks": {
                "failed": True,
                "warnings": False,
                "log_lines": 5,
                "logs_per_poll": 2,
                "ignore_types": ["vncproxy", "qmclone"],
            }
        },
        thresholds={
            "cpu": {"trigger": 0.9, "clear": 0.8, "for_secs": 300},
            "storage": {"trigger": 0.85},
        },
    )
    assert rules.expect == (
        ExpectRule(tag="prod"),
        ExpectRule(pool="production", cluster="lab"),
        ExpectRule(vmids=(100, 101)),
        ExpectRule(vmids=(102,)),
        ExpectRule(name="web*"),
        ExpectRule(hastate="started"),
        ExpectRule(all=True),
    )
    assert rules.maintenance == MaintenanceConfig(tag="upkeep", ha_maintenance=False)
    assert rules.tasks == TaskRules(
        failed=True,
        warnings=False,
        log_lines=5,
        logs_per_poll=2,
        ignore_types=frozenset({"vncproxy", "qmclone"}),
    )
    assert rules.thresholds == {
        "cpu": Threshold(0.9, 0.8, 300),
        "storage": Threshold(0.85, 0.8, 60),
    }


def test_console_sessions_are_ignored_by_default_and_the_list_can_be_emptied(
    tmp_path: Path,
) -> None:
    # PVE's console task types (pve-manager, qemu-server, pve-container fork_worker calls).
    assert rules_of(tmp_path).tasks.ignore_types == {
        "vncproxy",
        "spiceproxy",
        "vncshell",
        "spiceshell",
        "termproxy",
    }
    assert rules_of(tmp_path, rules={"tasks": {"ignore_types": []}}).tasks.ignore_types == set()


def test_empty_expect_expects_nothing(tmp_path: Path) -> None:
    assert rules_of(tmp_path, expect=[]).expect == ()


def test_an_empty_maintenance_tag_turns_tags_off(tmp_path: Path) -> None:
    assert rules_of(tmp_path, maintenance={"tag": ""}).maintenance.tag is None


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        ({"expect": {"tag": "x"}}, "expect: expected a list"),
        ({"expect": [{}]}, "expect[0]: empty selector"),
        ({"expect": [{"tags": "x"}]}, "expect[0].tags: unknown key (did you mean tag?)"),
        ({"expect": [{"vmid": [99]}]}, "expect[0].vmid[0]: expected an integer from 100"),
        ({"expect": [{"all": False}]}, "expect[0].all: only `all: true`"),
        ({"expect": [{"name": ""}]}, "expect[0].name: must not be empty"),
        ({"maintenance": {"ha": True}}, "maintenance.ha: unknown key"),
        ({"rules": {"task": {}}}, "rules.task: unknown key (did you mean tasks?)"),
        ({"rules": {"tasks": {"log_lines": 1000}}}, "rules.tasks.log_lines: expected an integer"),
        ({"rules": {"tasks": {"ignore_types": "vncproxy"}}}, "rules.tasks.ignore_types: expected"),
        ({"rules": {"tasks": {"ignore_types": [""]}}}, "rules.tasks.ignore_types[0]: "),
        (
            {"rules": {"tasks": {"ignore_types": ["vncproxy", "qm start"]}}},
            'rules.tasks.ignore_types[1]: "qm start" is not a task type',
        ),
        ({"rules": {"tasks": {"ignore_types": [3]}}}, "rules.tasks.ignore_types[0]: expected"),
        ({"thresholds": {"ram": {"trigger": 0.9}}}, "thresholds.ram: unknown key"),
        ({"thresholds": {"cpu": {}}}, "thresholds.cpu.trigger: required"),
        ({"thresholds": {"cpu": {"trigger": 90}}}, "thresholds.cpu.trigger: expected a number"),
        (
            {"thresholds": {"cpu": {"trigger": 0.8, "clear": 0.9}}},
            "thresholds.cpu.clear: must be below trigger",
        ),
    ],
)
def test_problems_name_their_key(tmp_path: Path, sections: dict[str, Any], expected: str) -> None:
    found = problems(tmp_path, base() | sections)
    assert any(p.startswith(expected) for p in found), found


def test_the_example_file_shows_the_rules() -> None:
    text = (REPO / "watch.yaml.example").read_text()
    for key in ("expect:", "maintenance:", "rules:", "tasks:", "ignore_types:", "thresholds:"):
        assert key in text
