"""`pvewatch api get`: paths, rendering, and real reads from the simulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pvewatch.operate.api import parse_api_path, render
from tests.e2e.harness import TOKEN, simulator
from tests.test_cli import pvewatch


@pytest.mark.parametrize(
    ("text", "path", "params"),
    [
        ("/version", "/version", {}),
        ("cluster/resources", "/cluster/resources", {}),
        ("/cluster/resources?type=vm", "/cluster/resources", {"type": "vm"}),
        ("/api2/json/nodes/pve1/tasks/", "/nodes/pve1/tasks", {}),
        ("https://pve1:8006/api2/json/cluster/status", "/cluster/status", {}),
    ],
)
def test_parse_api_path(text: str, path: str, params: dict[str, str]) -> None:
    assert parse_api_path(text) == (path, params)


@pytest.mark.parametrize("text", ["", "/", "/api2/json"])
def test_parse_api_path_refuses_nothing(text: str) -> None:
    with pytest.raises(ValueError, match="API path"):
        parse_api_path(text)


def test_render_table_of_rows_sorted_with_id_first() -> None:
    data: list[dict[str, Any]] = [
        {"type": "qemu", "id": "qemu/101", "tags": None},
        {"id": "node/pve1", "type": "node", "cpu": 0.5},
    ]
    assert render(data, "table").splitlines() == [
        "id         type  tags  cpu",
        "---------  ----  ----  ---",
        "node/pve1  node        0.5",
        "qemu/101   qemu",
    ]


def test_render_object_scalar_and_json() -> None:
    assert render({"version": "9.1.9", "release": "9.1"}, "table").splitlines()[2:] == [
        "release  9.1",
        "version  9.1.9",
    ]
    assert render("OK", "table") == "OK"
    assert render([], "table") == ""
    assert json.loads(render({"a": [1]}, "json")) == {"a": [1]}


def _config(tmp: Path, url: str, fingerprint: str) -> str:
    path = tmp / "watch.yaml"
    cluster = {"endpoints": [url], "token": TOKEN, "tls": {"fingerprint": fingerprint}}
    doc = {"clusters": [{"name": "first", **cluster}, {"name": "second", **cluster}]}
    path.write_text(json.dumps(doc))
    return str(path)


def test_api_get_against_the_simulator(tmp_path: Path) -> None:
    with simulator() as sim:
        assert sim.fingerprint
        config = _config(tmp_path, sim.url, sim.fingerprint)
        version = pvewatch("api", "get", "/version", "-o", "json", "-c", config)
        nodes = pvewatch(
            "api", "get", "/cluster/resources?type=node", "--cluster", "second", "-c", config
        )
        missing = pvewatch("api", "get", "/nodes/pve1/qemu", "-c", config)
        unknown = pvewatch("api", "get", "/version", "--cluster", "third", "-c", config)
    assert version.returncode == 0, version.stderr
    assert json.loads(version.stdout)["version"].startswith("9.")
    assert nodes.returncode == 0, nodes.stderr
    table = nodes.stdout.splitlines()
    assert table[0].split()[:2] == ["id", "type"]
    assert [line.split()[0] for line in table[2:]] == ["node/pve1", "node/pve2", "node/pve3"]
    # An API error: one line, exit 1.
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1
    assert "pvewatch api: cluster first:" in missing.stderr
    assert "501" in missing.stderr
    assert unknown.returncode == 2
    assert "no cluster 'third'" in unknown.stderr
    assert "first, second" in unknown.stderr
    for result in (version, nodes, missing, unknown):
        assert TOKEN.rsplit("=", 1)[1] not in result.stdout + result.stderr


def test_only_get_exists() -> None:
    result = pvewatch("api", "post", "/nodes/pve1/qemu/100/status/stop")
    assert result.returncode == 2
    assert "invalid choice: 'post'" in result.stderr
