"""`http.health_check`: the credentials `pvewatch health` probes the listener with, and
`load_http_config`, which reads only the http section for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pvewatch.config.service import load_http_config
from pvewatch.config.types import HealthCheckConfig
from pvewatch.errors import ConfigError
from pvewatch.secret import Secret, secret_values

from .support import base, load, problems, write

HASH = "$2b$04$Xj2nZ1wnO1VK2sUKVfzZhO59DcE8tZY0ifr.bgQgwZRBz00mwLi92"
USERS = {"prometheus": HASH}


def with_check(check: object, users: object = USERS) -> dict[str, Any]:
    return {**base(), "http": {"basic_auth_users": users, "health_check": check}}


def test_the_password_comes_from_a_file_and_is_masked(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("probe-password-1\n")
    config = load(tmp_path, with_check({"user": "prometheus", "password_file": "pw"}))
    check = config.http.health_check
    assert check == HealthCheckConfig("prometheus", Secret("probe-password-1"))
    assert "probe-password-1" in secret_values(config)  # so the logs mask it


def test_absent_means_no_credentials(tmp_path: Path) -> None:
    assert load(tmp_path, base()).http.health_check == HealthCheckConfig()


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        ({"user": "grafana", "password": "x"}, "http.health_check.user: 'grafana' is not one of"),
        ({"user": "prometheus"}, "http.health_check: set user and password"),
        ({"password": "x"}, "http.health_check: set user and password"),
        ({"user": "prometheus", "password_file": "missing"}, "http.health_check.password_file:"),
        ({"cert_file": "probe.crt"}, "http.health_check: set cert_file and key_file together"),
        ({"key_file": ""}, "http.health_check.key_file: must not be empty"),
        ({"usr": "prometheus"}, "http.health_check.usr: unknown key (did you mean user?)"),
        ("prometheus", "http.health_check: expected a mapping"),
    ],
)
def test_problems(tmp_path: Path, check: object, expected: str) -> None:
    found = problems(tmp_path, with_check(check))
    assert any(p.startswith(expected) for p in found), found


def test_a_user_for_a_listener_without_auth_is_a_warning(tmp_path: Path) -> None:
    doc = {**base(), "http": {"health_check": {"user": "prometheus", "password": "x"}}}
    warnings = load(tmp_path, doc).warnings
    assert "http.health_check.user: unused: the listener has no basic_auth_users" in warnings


def test_load_http_config_reads_only_the_http_section(tmp_path: Path) -> None:
    doc = {
        "clusters": [{"name": "a", "endpoints": ["${NOT_SET}"], "token_file": "/nonexistent"}],
        "http": {"listen": "${LISTEN:-127.0.0.1:9886}"},
    }
    path = write(tmp_path, doc)
    assert load_http_config(path, {"LISTEN": "0.0.0.0:9001"}).listen == "0.0.0.0:9001"
    assert load_http_config(path, {}).listen == "127.0.0.1:9886"
    path = write(tmp_path, {"http": {"listen": "${UNSET}"}})
    with pytest.raises(ConfigError) as info:
        load_http_config(path, {})
    assert info.value.problems == ["http.listen: undefined environment variable UNSET"]
