"""The store and http sections."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pvewatch.config.load import summary_lines
from pvewatch.config.types import split_host_port

from .support import (
    REPO,
    assert_reported,
    base,
    load,
)

SERVICE_PROBLEMS: list[tuple[str, object, str]] = [
    ("retention zero", {**base(), "store": {"retention_days": 0}}, "store.retention_days:"),
    ("store path empty", {**base(), "store": {"path": ""}}, "store.path: must not be empty"),
    ("listen no port", {**base(), "http": {"listen": "localhost"}},
     "http.listen: expected HOST:PORT"),
    ("listen bare v6", {**base(), "http": {"listen": "::1:9886"}}, "http.listen:"),
    ("listen port range", {**base(), "http": {"listen": "[::1]:70000"}}, "http.listen:"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("doc", "expected"), [c[1:] for c in SERVICE_PROBLEMS], ids=[c[0] for c in SERVICE_PROBLEMS]
)
def test_service_problem_names_its_key_path(tmp_path: Path, doc: object, expected: str) -> None:
    assert_reported(tmp_path, doc, expected)


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:9886", ("127.0.0.1", 9886)),
        ("[::1]:0", ("::1", 0)),
        ("host-a:80", ("host-a", 80)),
    ],
)
def test_listen_forms(tmp_path: Path, listen: str, expected: tuple[str, int]) -> None:
    assert load(tmp_path, {**base(), "http": {"listen": listen}}).http.host_port() == expected


@pytest.mark.parametrize("bad", ["", ":80", "[::1]", "[nope]:80", "a:b", "a b:80", "h:-1"])
def test_split_host_port_rejects(bad: str) -> None:
    assert split_host_port(bad) is None


POSTGRES_PROBLEMS: list[tuple[str, object, str]] = [
    ("no server", {"type": "postgres"}, "store: a postgres store needs dsn (or dsn_file) or host"),
    ("path with postgres", {"type": "postgres", "host": "db", "path": "x.db"},
     "store.path: not a key of a postgres store"),
    ("dsn with sqlite", {"dsn": "postgresql://db/pvewatch"},
     "store.dsn: not a key of a sqlite store"),
    ("other scheme", {"type": "postgres", "dsn": "mysql://db/x"},
     "store.dsn: expected a postgresql:// URL, got a mysql:// one"),
    ("dsn and file", {"type": "postgres", "dsn": "postgresql://db", "dsn_file": "f"},
     "store: set dsn or dsn_file, not both"),
    ("bad port", {"type": "postgres", "host": "db", "port": 0}, "store.port: expected an integer"),
    ("bad type", {"type": "mysql"}, "store.type: expected one of sqlite, postgres"),
    ("check too often", {"type": "postgres", "host": "db", "leader_check_secs": 0.01},
     "store.leader_check_secs:"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("store", "expected"), [c[1:] for c in POSTGRES_PROBLEMS], ids=[c[0] for c in POSTGRES_PROBLEMS]
)
def test_postgres_problem_names_its_key_path(tmp_path: Path, store: object, expected: str) -> None:
    assert_reported(tmp_path, {**base(), "store": store}, expected)


def test_postgres_store_from_parts_and_a_password_file(tmp_path: Path) -> None:
    (tmp_path / "pg_password").write_text("s3cret-pg-password\n")
    store = {"type": "postgres", "dsn": "postgresql://app@db.example:5433/watch",
             "user": "pvewatch", "password_file": "pg_password", "replica_id": "w1"}  # fmt: skip
    config = load(tmp_path, {**base(), "store": store})
    pg = config.store.postgres
    assert pg is not None
    assert config.store.type == "postgres"
    assert (pg.user, pg.replica_id, pg.leader_check_secs) == ("pvewatch", "w1", 2.0)
    assert pg.password is not None
    assert pg.password.reveal() == "s3cret-pg-password"
    assert pg.where() == "postgresql://db.example:5433/watch"
    summary = "\n".join(summary_lines(config))
    assert "store postgresql://db.example:5433/watch" in summary
    assert "s3cret" not in summary
    assert "s3cret" not in repr(config)


def test_the_examples_postgres_block_loads(tmp_path: Path) -> None:
    lines = (REPO / "watch.yaml.example").read_text().splitlines()
    start = lines.index("store:")
    block = ["store:"]
    for line in lines[start + 1 :]:
        if not line.startswith(" "):
            break
        stripped = line.strip()
        if (
            stripped.startswith("# ")
            and ":" in stripped
            and not stripped.startswith("# PostgreSQL")
        ):
            key = stripped[2:].split(":", 1)[0]
            if key.isidentifier() and key not in ("password",):
                block.append("  " + stripped[2:])
        elif not stripped.startswith("#") and stripped.split(":")[0] == "retention_days":
            block.append(line)
    (tmp_path / "pg_password").write_text("pw\n")
    text = "\n".join(block).replace("/etc/pvewatch/pg_password", str(tmp_path / "pg_password"))
    doc = {**base(), **yaml.safe_load(text)}
    config = load(tmp_path, doc)
    assert config.store.type == "postgres"
    assert config.store.postgres is not None
    assert config.store.postgres.where() == "postgresql://db.example.com:5432/pvewatch"
