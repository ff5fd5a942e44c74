"""Reading the document: YAML mistakes, typed values, `${VAR}` expansion, secrets from
files."""

from __future__ import annotations

from pathlib import Path

import pytest

from pvewatch.secret import Secret

from .support import (
    TOKEN,
    assert_reported,
    base,
    load,
    problems,
    with_cluster,
    without,
)

VALUE_PROBLEMS: list[tuple[str, object, str]] = [
    ("typo", with_cluster(intervall_secs=5),
     "clusters[0].intervall_secs: unknown key (did you mean interval_secs?)"),
    ("bool as number", with_cluster(interval_secs=True),
     "clusters[0].interval_secs: expected a number, got a boolean"),
    ("int as bool", with_cluster(tls={"verify": 1}),
     "clusters[0].tls.verify: expected true or false, got an integer"),
    ("string as number", with_cluster(timeout_secs="10"),
     "clusters[0].timeout_secs: expected a number, got a string"),
    ("interval infinite", with_cluster(interval_secs=float("inf")),
     "clusters[0].interval_secs: expected a number >= 1"),
    ("threshold float", with_cluster(source_failure_threshold=2.5),
     "clusters[0].source_failure_threshold: expected an integer, got a number"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("doc", "expected"), [c[1:] for c in VALUE_PROBLEMS], ids=[c[0] for c in VALUE_PROBLEMS]
)
def test_value_problem_names_its_key_path(tmp_path: Path, doc: object, expected: str) -> None:
    assert_reported(tmp_path, doc, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("clusters:\n  - name: a\n    interval_secs: yes\n", "clusters[0].interval_secs"),
        ("clusters:\n  - name: a\n    tls: {verify: 'no'}\n", "clusters[0].tls.verify"),
        ("clusters:\n  - name: a\n    name: b\n", "line 3, column 5: duplicate key 'name'"),
        ("clusters: [\n", "line 2, column 1: invalid YAML"),
        ("clusters:\n\t- a\n", "line 2, column 1: invalid YAML"),
        ("a: !!python/object:os.system x\n", "invalid YAML"),
        ("store: {path: 2024-13-45}\n", "invalid YAML value"),
    ],
)
def test_yaml_level_mistakes(tmp_path: Path, text: str, expected: str) -> None:
    assert any(expected in p for p in problems(tmp_path, text))


EXPANSIONS = [
    ("${A}", {"A": "x"}, "x"),
    ("pre-${A}-${B}", {"A": "1", "B": "2"}, "pre-1-2"),
    ("${A:-dflt}", {}, "dflt"),
    ("${A:-dflt}", {"A": ""}, "dflt"),
    ("${A:-}", {}, ""),
    ("${A}", {"A": ""}, ""),
    ("$${A}", {}, "${A}"),
    ("a$$b", {}, "a$b"),
    ("cost$5", {}, "cost$5"),
    ("${A}", {"A": "x\nclusters: []"}, "x\nclusters: []"),  # no YAML injection
]


@pytest.mark.parametrize(("raw", "env", "expected"), EXPANSIONS)
def test_env_expansion(tmp_path: Path, raw: str, env: dict[str, str], expected: str) -> None:
    doc = {**base(), "store": {"path": "/data/" + raw}}
    config = load(tmp_path, doc, env)
    assert config.store.path == Path("/data/" + expected)
    assert len(config.clusters) == 1


def test_undefined_variable_names_key_and_variable_once(tmp_path: Path) -> None:
    assert problems(tmp_path, with_cluster(token="${PVE_TOKEN}")) == [
        "clusters[0].token: undefined environment variable PVE_TOKEN"
    ]


def test_malformed_reference(tmp_path: Path) -> None:
    found = problems(tmp_path, {**base(), "store": {"path": "/x/${1A}"}})
    assert found == ["store.path: invalid ${...}: use ${VAR} or ${VAR:-default}, $$ for a $"]


def test_numbers_and_booleans_from_env(tmp_path: Path) -> None:
    doc = with_cluster(
        interval_secs="${IVAL}", source_failure_threshold="${N:-5}", tls={"verify": "${V}"}
    )
    cluster = load(tmp_path, doc, {"IVAL": "2.5", "V": "False"}).clusters[0]
    assert (cluster.interval_secs, cluster.source_failure_threshold) == (2.5, 5)
    assert cluster.tls.verify is False
    found = problems(tmp_path, doc, {"IVAL": "soon", "V": "maybe"})
    assert "clusters[0].interval_secs: expected a number, got a string" in found
    assert "clusters[0].tls.verify: expected true or false, got a string" in found


def test_token_file_relative_to_config_dir(tmp_path: Path) -> None:
    (tmp_path / "lab.tok").write_text(TOKEN + "\n")
    doc = without(with_cluster(token_file="lab.tok"), "token")
    assert load(tmp_path, doc).clusters[0].token == Secret(TOKEN)


def test_secret_files_relative_to_credentials_directory(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "pw").write_text("hunter2\r\n")
    doc = without(with_cluster(username="mon@pve", password_file="pw"), "token")
    cluster = load(tmp_path, doc, {"CREDENTIALS_DIRECTORY": str(creds)}).clusters[0]
    assert (cluster.username, cluster.password) == ("mon@pve", Secret("hunter2"))


def test_absolute_secret_file(tmp_path: Path) -> None:
    (tmp_path / "t").write_text(TOKEN)
    doc = without(with_cluster(token_file=str(tmp_path / "t")), "token")
    env = {"CREDENTIALS_DIRECTORY": "/nonexistent"}
    assert load(tmp_path, doc, env).clusters[0].token == Secret(TOKEN)


def test_token_from_credentials_directory_by_cluster_name(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "lab.token").write_text(TOKEN + "\n")
    doc = without(base(), "token")
    config = load(tmp_path, doc, {"CREDENTIALS_DIRECTORY": str(creds)})
    assert config.clusters[0].token == Secret(TOKEN)


def test_secret_file_problems_name_key_and_file(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    doc = without(base(), "token")
    doc["clusters"][0]["token_file"] = "missing"
    doc["clusters"].append(
        {"name": "b", "endpoints": ["https://b"], "username": "a@pam", "password_file": "empty"}
    )
    assert problems(tmp_path, doc) == [
        f"clusters[0].token_file: cannot read {tmp_path / 'missing'}: No such file or directory",
        f"clusters[1].password_file: {tmp_path / 'empty'} is empty",
    ]


def test_token_from_file_is_validated_without_echoing_it(tmp_path: Path) -> None:
    (tmp_path / "t").write_text("TOPSECRET\n")
    found = problems(tmp_path, without(with_cluster(token_file="t"), "token"))
    assert found == ["clusters[0].token_file: expected USER@REALM!TOKENID=SECRET"]


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    found = problems(tmp_path, "\n".join(lines) + "\n")
    assert any("too large" in p for p in found)
