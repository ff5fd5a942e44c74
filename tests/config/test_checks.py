"""`checks:` of a cluster: every check on by default, true/false or a mapping each, and a
clear error naming the key for what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from pvewatch.config.checks import CHECKS, CheckConfig

from .support import assert_reported, load, with_cluster


def checks_of(tmp_path: Path, value: object) -> dict[str, CheckConfig]:
    doc = with_cluster(checks=value) if value != "absent" else with_cluster()
    return {c.name: c for c in load(tmp_path, doc).clusters[0].checks}


def test_without_checks_every_check_runs_at_its_default_interval(tmp_path: Path) -> None:
    found = checks_of(tmp_path, "absent")
    assert list(found) == list(CHECKS)
    assert {n: c.interval_secs for n, c in found.items()} == {
        "ha": 30, "ceph": 30, "replication": 300, "qdevice": 30,
        "certificates": 3600, "disks": 1800, "backups": 3600,
    }  # fmt: skip
    assert (found["certificates"].warn_days, found["certificates"].critical_days) == (30, 7)
    assert found["backups"].max_age_hours == 26


def test_false_turns_all_or_one_off_and_a_mapping_sets_options(tmp_path: Path) -> None:
    assert checks_of(tmp_path, False) == {}
    found = checks_of(
        tmp_path,
        {"ceph": False, "certificates": {"warn_days": 20, "critical_days": 3},
         "backups": {"max_age_hours": 50, "interval_secs": 600}},
    )  # fmt: skip
    assert "ceph" not in found
    assert (found["certificates"].warn_days, found["certificates"].critical_days) == (20, 3)
    assert (found["backups"].max_age_hours, found["backups"].interval_secs) == (50, 600)
    assert found["ha"].interval_secs == 30


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"cepf": True}, "clusters[0].checks.cepf: unknown key (did you mean ceph?)"),
        ({"ha": "yes"}, "clusters[0].checks.ha: expected true, false or a mapping, got a string"),
        ({"ha": {"warn_days": 3}}, "clusters[0].checks.ha.warn_days: unknown key"),
        ({"disks": {"interval_secs": 0}}, "clusters[0].checks.disks.interval_secs"),
        (
            {"certificates": {"warn_days": 5, "critical_days": 10}},
            "clusters[0].checks.certificates.critical_days: must not exceed warn_days (5)",
        ),
        ([1], "clusters[0].checks: expected a mapping"),
    ],
)
def test_bad_checks_are_named(tmp_path: Path, value: object, expected: str) -> None:
    assert_reported(tmp_path, with_cluster(checks=value), expected)
