"""`notifications:` of a cluster and `backup_servers:` (pvewatch.config.notifications)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from pvewatch.config.load import check_config
from pvewatch.sinks.table import SINK_TYPES

from .support import assert_reported, base, load, with_cluster, write

GOOD = "4f1c9a7e2b6d8035c1e9a7b3"


def with_servers(*servers: Any) -> dict[str, Any]:
    return base() | {"backup_servers": list(servers)}


PROBLEMS: list[tuple[str, object, str]] = [
    ("empty", with_cluster(notifications={}),
     "clusters[0].notifications: set token or token_file"),
    ("unknown key", with_cluster(notifications={"token": GOOD, "secret": "x"}),
     "clusters[0].notifications.secret: unknown key"),
    ("both", with_cluster(notifications={"token": GOOD, "token_file": "t"}),
     "clusters[0].notifications: set token or token_file, not both"),
    ("short", with_cluster(notifications={"token": "short"}),
     "clusters[0].notifications.token: shorter than 16 characters: make one with openssl"),
    ("space", with_cluster(notifications={"token": "abc def ghi jkl mno"}),
     "clusters[0].notifications.token: expected printable ASCII without spaces"),
    ("missing file", with_cluster(notifications={"token_file": "nope.token"}),
     "clusters[0].notifications.token_file: cannot read"),
    ("not a list", {**base(), "backup_servers": {"pbs1": {}}},
     "backup_servers: expected a list of backup servers, got a mapping"),
    ("no name", with_servers({"notifications": {"token": GOOD}}),
     "backup_servers[0].name: required"),
    ("bad name", with_servers({"name": "PBS 1", "notifications": {"token": GOOD}}),
     "backup_servers[0].name: expected lower-case letters"),
    ("name of a cluster", with_servers({"name": "lab", "notifications": {"token": GOOD}}),
     'backup_servers[0].name: "lab" is taken (names are unique across clusters and backup'),
    ("twice", with_servers(*[{"name": "b", "notifications": {"token": GOOD}}] * 2),
     'backup_servers[1].name: "b" is taken'),
    ("no notifications", with_servers({"name": "b"}),
     "backup_servers[0].notifications: required"),
    ("server short token", with_servers({"name": "b", "notifications": {"token": "x"}}),
     "backup_servers[0].notifications.token: shorter than 16"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "doc", "expected"), PROBLEMS, ids=[p[0] for p in PROBLEMS])
def test_problems(tmp_path: Path, case: str, doc: object, expected: str) -> None:
    assert_reported(tmp_path, doc, expected)


def test_tokens_inline_and_from_files(tmp_path: Path) -> None:
    (tmp_path / "pbs1.notify").write_text(GOOD + "-pbs\n")
    doc = with_cluster(notifications={"token": GOOD})
    doc["backup_servers"] = [{"name": "pbs1", "notifications": {"token_file": "pbs1.notify"}}]
    config = load(tmp_path, doc)
    cluster = config.clusters[0].notifications
    assert cluster is not None
    assert cluster.token.reveal() == GOOD
    (server,) = config.backup_servers
    assert (server.name, server.notifications.token.reveal()) == ("pbs1", GOOD + "-pbs")
    assert load(tmp_path, base()).clusters[0].notifications is None


def test_check_config_names_the_paths_without_the_tokens(tmp_path: Path) -> None:
    doc = with_cluster(notifications={"token": GOOD})
    doc["backup_servers"] = [{"name": "pbs1", "notifications": {"token": GOOD + "x"}}]
    out, err = io.StringIO(), io.StringIO()
    assert check_config(write(tmp_path, doc), {}, out, err, sink_types=SINK_TYPES) == 0
    assert "notifications at /notify/lab" in out.getvalue()
    assert "backup server pbs1: notifications at /notify/pbs1" in out.getvalue()
    assert GOOD not in out.getvalue() + err.getvalue()
