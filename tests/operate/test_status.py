"""`pvewatch status`: who leads which cluster, since when, the last poll."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pvewatch.config.types import ClusterConfig, Config, StoreConfig
from pvewatch.model import SourceHealth
from pvewatch.operate.status import show_status
from pvewatch.store.sqlite import SqliteStore
from tests.store.builders import T0, resources, snapshot


def _config(tmp_path: Path) -> Config:
    clusters = tuple(ClusterConfig(n, ("https://pve:8006",)) for n in ("prod", "lab"))
    return Config(clusters=clusters, store=StoreConfig(path=tmp_path / "state.db"))


def test_with_sqlite_one_replica_leads_every_cluster(tmp_path: Path) -> None:
    config = _config(tmp_path)
    down = SourceHealth(consecutive_failures=3, unreachable=True, last_error="timeout")
    with SqliteStore(config.store.path) as store:
        store.commit_poll("prod", snapshot=snapshot(resources(1)), events=[], sinks=[],
                          health=down)  # fmt: skip
    out, err = io.StringIO(), io.StringIO()
    assert show_status(config, T0 + timedelta(minutes=5), out, err, as_json=False) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["CLUSTER", "LEADER", "SINCE", "LAST", "POLL", "SOURCE"]
    assert lines[1].startswith("prod ")
    assert "single replica (SQLite)" in lines[1]
    assert "2026-11-28T01:02:03Z (5m ago)" in lines[1]
    assert lines[1].endswith("unreachable (3 failed polls)")
    assert lines[2].startswith("lab ")
    assert lines[2].endswith("never polled")

    out = io.StringIO()
    assert show_status(config, datetime.now(UTC), out, err, as_json=True) == 0
    first = json.loads(out.getvalue().splitlines()[0])
    assert first["cluster"] == "prod"
    assert first["last_poll"] == "2026-11-28T01:02:03Z"
    assert first["unreachable"] is True


def test_no_store_yet_says_so(tmp_path: Path) -> None:
    err = io.StringIO()
    assert show_status(_config(tmp_path), T0, io.StringIO(), err, as_json=False) == 1
    assert "has pvewatch run yet?" in err.getvalue()
