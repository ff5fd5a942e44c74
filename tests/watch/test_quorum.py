"""Quorum read from /cluster/status as PVE sends it (FACTS.md §4), and the captured answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pvewatch.watch.quorum import read_quorate

CAPTURED = Path(__file__).resolve().parents[2].parent / "shared" / "pve-api" / "captured"
NODE = {"type": "node", "id": "node/pve1", "name": "pve1", "nodeid": 1, "online": 1}
NODE2 = {**NODE, "id": "node/pve2", "name": "pve2", "nodeid": 2}


def cluster(**fields: Any) -> dict[str, Any]:
    return {"type": "cluster", "id": "cluster", "name": "lab", "nodes": 2, "version": 3} | fields


@pytest.mark.parametrize(
    ("rows", "quorate"),
    [
        pytest.param([cluster(quorate=1), NODE, NODE2], True, id="1"),
        pytest.param([NODE, cluster(quorate=0), NODE2], False, id="0"),
        pytest.param([cluster(quorate="1"), NODE], True, id='"1"'),
        pytest.param([cluster(quorate="0"), NODE], False, id='"0" is not quorate'),
        pytest.param([cluster(quorate=True), NODE], True, id="true"),
        pytest.param([cluster(quorate=False), NODE], False, id="false"),
        pytest.param([cluster(), NODE, NODE2], None, id="no quorate: unknown"),
        pytest.param([cluster(quorate=None), NODE], None, id="null"),
        pytest.param([cluster(quorate=""), NODE], None, id="empty string"),
        pytest.param([cluster(quorate="no"), NODE], None, id="a word"),
        pytest.param([cluster(quorate=2), NODE], None, id="2"),
        pytest.param([cluster(quorate=1.0), NODE], None, id="a float"),
        pytest.param([cluster(quorate=[1]), NODE], None, id="a list"),
        pytest.param([cluster(quorate=1), cluster(quorate=0)], None, id="two that disagree"),
        pytest.param([cluster(quorate=1), cluster(quorate=1)], True, id="two that agree"),
        pytest.param([{**NODE, "nodeid": 0, "local": 1}], True, id="single node, no cluster"),
        pytest.param([NODE, NODE2], None, id="nodes without their cluster entry"),
        pytest.param([], None, id="nothing"),
        pytest.param([None, "x", 1, cluster(quorate=0)], False, id="garbage rows skipped"),
    ],
)
def test_quorate_as_pve_sends_it(rows: list[Any], quorate: bool | None) -> None:
    assert read_quorate(rows) is quorate


@pytest.mark.parametrize(
    ("name", "quorate"),
    [
        ("ansible-ceph-lab-cluster-status.json", True),
        ("ansible-standalone-cluster-status.json", True),
        ("gopx-pve7-cluster-status.json", True),
    ],
)
def test_captured_answers(name: str, quorate: bool) -> None:
    rows = json.loads((CAPTURED / name).read_text())["data"]
    assert read_quorate(rows) is quorate
