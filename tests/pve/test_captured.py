"""Every captured real PVE answer in shared/pve-api/captured/ parses through PveClient."""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
import pytest
import respx

from pvewatch.config.types import ClusterConfig
from pvewatch.pve.client import PveClient
from pvewatch.secret import Secret
from pvewatch.upid import parse_upid
from tests.pve.support import CAPTURED

BASE = "https://pve1:8006/api2/json"
# file name part → (path served, client method)
KINDS = {
    "cluster-resources": ("/cluster/resources", "resources"),
    "offline-vm-row": ("/cluster/resources", "resources"),
    "cluster-status": ("/cluster/status", "cluster_status"),
    "version": ("/version", "version"),
    # /nodes/{node}/tasks rows have the /cluster/tasks format (FACTS §3.3)
    "node-tasks": ("/cluster/tasks", "tasks"),
}
FILES = sorted(p.name for p in CAPTURED.glob("*.json"))


def kind_of(name: str) -> tuple[str, str]:
    matches = [v for k, v in KINDS.items() if k in name]
    assert len(matches) == 1, f"no single kind for captured file {name}"
    return matches[0]


def test_captured_files_are_found() -> None:
    assert len(FILES) >= 20, CAPTURED


@pytest.mark.parametrize("name", FILES)
async def test_captured_answer_parses(name: str) -> None:
    raw = (CAPTURED / name).read_bytes()
    path, method = kind_of(name)
    router = respx.MockRouter()
    # PVE gzips bodies over 1 KiB when the client accepts it
    headers = {"Content-Encoding": "gzip"} if len(raw) > 1024 else {}
    body = gzip.compress(raw) if headers else raw
    router.get(url__startswith=f"{BASE}{path}").respond(content=body, headers=headers)
    cluster = ClusterConfig(name="lab", endpoints=("pve1",), token=Secret("a@pve!b=c"))
    transport = httpx.MockTransport(router.async_handler)
    async with PveClient(cluster, transport=transport, min_interval_secs=0) as pve:
        answer: Any = await getattr(pve, method)()
    assert answer == json.loads(raw)["data"]


@pytest.mark.parametrize("name", [n for n in FILES if "tasks" in n])
def test_captured_upids_decode_to_their_rows(name: str) -> None:
    rows = json.loads((CAPTURED / name).read_text())["data"]
    for row in rows:
        upid = parse_upid(row["upid"])
        assert (upid.node, upid.type, upid.id) == (row["node"], row["type"], row["id"])
        assert (upid.pid, upid.pstart, upid.starttime) == (
            row["pid"],
            row["pstart"],
            row["starttime"],
        )
        assert upid.user == row["user"]
        assert str(upid) == row["upid"]
