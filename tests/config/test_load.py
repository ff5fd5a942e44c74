"""load_config as a whole: every problem at once, defaults, secrets never shown,
`pvewatch check-config` output and exit codes, and properties over arbitrary input."""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvewatch.config.load import check_config, load_config
from pvewatch.errors import ConfigError
from pvewatch.secret import Secret
from pvewatch.sinks.table import SINK_TYPES

from .support import (
    FP,
    REPO,
    SECRET,
    TOKEN,
    assert_reported,
    base,
    ca_pem,
    load,
    problems,
    with_cluster,
    without,
    write,
)

TOP_LEVEL_PROBLEMS: list[tuple[str, object, str]] = [
    ("top-level typo", {**base(), "sink": {}}, "sink: unknown key (did you mean sinks?)"),
    ("top level list", [1, 2], "(top level): expected a mapping, got a list"),
    ("empty file", "", "(top level): the file is empty"),
    ("non-string key", "clusters: []\n1: x\n", "(top level): key 1 is not a string"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("doc", "expected"), [c[1:] for c in TOP_LEVEL_PROBLEMS], ids=[c[0] for c in TOP_LEVEL_PROBLEMS]
)
def test_top_level_problem_names_its_key_path(tmp_path: Path, doc: object, expected: str) -> None:
    assert_reported(tmp_path, doc, expected)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    doc = base()
    doc["clusters"][0].update(interval_secs=0, tls={"fingerprint": "nope"}, name="Bad Name")
    doc["clusters"].append({"name": "b", "endpoints": ["gopher://x"], "token": "x"})
    doc["sinks"] = {"console": {"type": "log", "format": "xml"}}
    doc["http"] = {"listen": "nowhere"}
    doc["store"] = {"retention_days": -1}
    found = problems(tmp_path, doc)
    for path in [
        "clusters[0].interval_secs:",
        "clusters[0].tls.fingerprint:",
        "clusters[0].name:",
        "clusters[1].endpoints[0]:",
        "clusters[1].token:",
        "sinks.console.format:",
        "http.listen:",
        "store.retention_days:",
    ]:
        assert any(p.startswith(path) for p in found), (path, found)


def test_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, base())
    cluster = config.clusters[0]
    assert (cluster.interval_secs, cluster.timeout_secs, cluster.source_failure_threshold) == (
        10.0,
        10.0,
        3,
    )
    assert cluster.token == Secret(TOKEN)
    assert (cluster.tls.verify, cluster.tls.mode) == (True, "system")
    assert config.store.path == Path("/var/lib/pvewatch/state.db")
    assert config.store.retention_days == 30
    assert config.http.host_port() == ("127.0.0.1", 9886)
    assert [(s.name, s.type, s.options.summary()) for s in config.sinks] == [
        ("console", "log", {"format": "text", "path": "-", "fsync": False})
    ]
    assert config.warnings == ()


def test_relative_paths_resolve_against_the_config_directory(tmp_path: Path) -> None:
    ca_pem(tmp_path)
    doc = with_cluster(tls={"ca_file": "ca.pem"})
    doc["store"] = {"path": "state.db"}
    doc["sinks"] = {"audit": {"type": "log", "format": "json", "path": "events.jsonl"}}
    config = load(tmp_path, doc)
    assert config.clusters[0].tls.ca_file == tmp_path / "ca.pem"
    assert config.clusters[0].tls.mode == "ca_file"
    assert config.store.path == tmp_path / "state.db"
    assert config.sinks[0].options.summary() == {
        "format": "json",
        "path": str(tmp_path / "events.jsonl"),
        "fsync": False,
    }


def secret_laden_docs() -> list[object]:
    return [
        with_cluster(token=SECRET),  # invalid format
        with_cluster(token=f"a@pve!t={SECRET}", interval_secs=0),
        with_cluster(token=f"a@pve!t={SECRET}", username="root@pam"),
        with_cluster(endpoints=[f"https://root:{SECRET}@pve1"]),
        without(with_cluster(username="root", password=SECRET), "token"),
        with_cluster(token=f"a@pve!t={SECRET}", tls={"verify": False}),  # valid
        f"clusters:\n  - token: {SECRET}\n    token: [\n",  # invalid YAML near the secret
    ]


@pytest.mark.parametrize("doc", secret_laden_docs())
def test_secret_never_in_errors_or_output(tmp_path: Path, doc: object) -> None:
    path = write(tmp_path, doc)
    try:
        config = load_config(path, {}, sink_types=SINK_TYPES)
        shown = repr(config)
    except ConfigError as e:
        shown = str(e) + repr(e.problems)
    out, err = io.StringIO(), io.StringIO()
    check_config(path, {}, out, err, sink_types=SINK_TYPES)
    assert SECRET not in shown + out.getvalue() + err.getvalue()


def test_check_config_summary(tmp_path: Path) -> None:
    doc = base()
    doc["clusters"].append(
        {
            "name": "b",
            "endpoints": ["https://b"],
            "username": "mon@pve",
            "password": SECRET,
            "tls": {"verify": False},
        }
    )
    out, err = io.StringIO(), io.StringIO()
    assert check_config(write(tmp_path, doc), {}, out, err, sink_types=SINK_TYPES) == 0
    text = out.getvalue()
    assert (
        "cluster lab: https://pve1.example:8006; auth token pvewatch@pve!monitor; tls system"
        in text
    )
    assert "cluster b: https://b:8006; auth password for mon@pve; tls INSECURE" in text
    assert "store /var/lib/pvewatch/state.db" in text
    assert "http listen 127.0.0.1:9886" in text
    assert "sink console: log (format=text, path=-, fsync=False)" in text
    assert "WARNING: clusters[1].tls.verify" in text
    assert err.getvalue() == ""
    assert "SECRET-VALUE" not in text
    assert SECRET not in text


@pytest.mark.parametrize(
    ("make_path", "expected"),
    [
        (lambda d: d / "missing.yaml", "cannot read: No such file or directory"),
        (lambda d: d, "cannot read: Is a directory"),
        (lambda d: write(d, "a: [b\n"), "line 2, column 1: invalid YAML"),
        (lambda d: write(d, "- 1\n- 2\n"), "(top level): expected a mapping, got a list"),
        (lambda d: write(d, "just text"), "(top level): expected a mapping, got a string"),
        (lambda d: write(d, {"clusters": [{"name": "x"}]}), "clusters[0].endpoints:"),
    ],
)
def test_check_config_failures(tmp_path: Path, make_path: Any, expected: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert check_config(make_path(tmp_path), {}, out, err, sink_types=SINK_TYPES) == 2
    assert expected in err.getvalue()
    assert "Traceback" not in err.getvalue()
    assert out.getvalue() == ""


def test_check_config_unreadable_bytes(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_bytes(b"clusters: \xff\xfe\n")
    err = io.StringIO()
    assert check_config(path, {}, io.StringIO(), err, sink_types=SINK_TYPES) == 2
    assert "not UTF-8 text" in err.getvalue()


def test_the_example_is_valid(tmp_path: Path) -> None:
    (tmp_path / "lab.password").write_text("hunter2\n")
    for name in ("prod", "pbs1"):
        (tmp_path / f"{name}.notify").write_text(f"{name}-notify-0123456789abcdef\n")
    env = {
        "PVE_TOKEN": TOKEN,
        "PVE_LAB_CA_FILE": str(ca_pem(tmp_path)),
        "CREDENTIALS_DIRECTORY": str(tmp_path),
    }
    config = load_config(REPO / "watch.yaml.example", env, sink_types=SINK_TYPES)
    assert [c.name for c in config.clusters] == ["prod", "lab"]
    assert [c.tls.mode for c in config.clusters] == ["pinned", "ca_file"]
    assert config.clusters[1].password == Secret("hunter2")
    assert [s.name for s in config.sinks] == ["console"]
    notifications = config.clusters[0].notifications
    assert notifications is not None
    assert notifications.token.reveal() == "prod-notify-0123456789abcdef"
    assert [b.name for b in config.backup_servers] == ["pbs1"]


KEYS = ["clusters", "name", "endpoints", "token", "token_file", "username", "password",
        "password_file", "tls", "verify", "ca_file", "fingerprint", "interval_secs",
        "timeout_secs", "source_failure_threshold", "store", "path", "retention_days",
        "http", "listen", "sinks", "console", "type", "format"]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(["log", "json", "lab", "https://a", "${X}", "${X:-1}", "$$", TOKEN, FP]),
)
DOCS = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), children, max_size=5
        ),
    ),
    max_leaves=25,
)


def load_only_config_errors(path: Path, env: dict[str, str]) -> None:
    found: list[str] = ["none"]
    try:
        load_config(path, env, sink_types=SINK_TYPES)
    except ConfigError as e:  # anything else fails the property
        found = e.problems
    assert found


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=DOCS)
def test_arbitrary_documents_raise_only_config_error(
    tmp_path_factory: pytest.TempPathFactory, doc: object
) -> None:
    path = write(tmp_path_factory.mktemp("h"), yaml.safe_dump(doc))
    load_only_config_errors(path, {"X": "1"})


@settings(max_examples=150, deadline=None)
@given(mutation=st.tuples(st.sampled_from(KEYS), DOCS, st.integers(0, 3)))
def test_mutated_valid_config_raises_only_config_error(
    tmp_path_factory: pytest.TempPathFactory, mutation: tuple[str, object, int]
) -> None:
    key, value, where = mutation
    doc: dict[str, Any] = copy.deepcopy(with_cluster(tls={"fingerprint": FP}))
    target = [doc, doc["clusters"][0], doc["clusters"][0]["tls"], doc.setdefault("sinks", {})][
        where
    ]
    target[key] = value
    load_only_config_errors(write(tmp_path_factory.mktemp("m"), doc), {})


@settings(max_examples=150, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("ab:-[]{}&*!'\"#|>\n\t ,?%@`1.")), max_size=60))
def test_arbitrary_text_raises_only_config_error(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    load_only_config_errors(write(tmp_path_factory.mktemp("t"), text), {})
