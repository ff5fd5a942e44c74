"""The store and http sections."""

from __future__ import annotations

from pathlib import Path

import pytest

from pvewatch.config import split_host_port

from .support import (
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
