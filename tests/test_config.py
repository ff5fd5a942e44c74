"""Config loading: every problem reported at once with its key path, env expansion,
secrets from files, and `pvewatch check-config` output and exit codes."""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvewatch.config import Config, check_config, load_config, split_host_port
from pvewatch.errors import ConfigError
from pvewatch.secret import Secret
from pvewatch.simulator.certs import make_self_signed

REPO = Path(__file__).resolve().parents[1]
TOKEN = "pvewatch@pve!monitor=8a1e0c2d-SECRET-VALUE"
FP = ":".join(["AB"] * 32)


def base() -> dict[str, Any]:
    return {
        "clusters": [
            {"name": "lab", "endpoints": ["https://pve1.example:8006"], "token": TOKEN},
        ]
    }


def with_cluster(**overrides: Any) -> dict[str, Any]:
    doc = base()
    doc["clusters"][0].update(overrides)
    return doc


def without(doc: dict[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        del doc["clusters"][0][key]
    return doc


def write(tmp_path: Path, doc: object, name: str = "watch.yaml") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc), encoding="utf-8")
    return path


def load(tmp_path: Path, doc: object, env: dict[str, str] | None = None) -> Config:
    return load_config(write(tmp_path, doc), env or {})


def problems(tmp_path: Path, doc: object, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, doc, env)
    return info.value.problems


def ca_pem(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_bytes(make_self_signed().cert_pem)
    return path


# ---------------------------------------------------------------- invalid configs

INVALID: list[tuple[str, object, str]] = [
    ("bad fingerprint", with_cluster(tls={"fingerprint": "AB:CD"}),
     "clusters[0].tls.fingerprint: expected 32 colon-separated hex bytes"),
    ("bad fingerprint in list", with_cluster(tls={"fingerprint": [FP, "zz"]}),
     "clusters[0].tls.fingerprint[1]: expected 32 colon-separated hex bytes"),
    ("duplicate name", {"clusters": [base()["clusters"][0], base()["clusters"][0]]},
     'clusters[1].name: duplicate cluster name "lab"'),
    ("sink format", {**base(), "sinks": {"console": {"type": "log", "format": "xml"}}},
     'sinks.console.format: expected one of text, json, got "xml"'),
    ("token and password", with_cluster(username="root@pam", password="pw"),
     "clusters[0]: set token or username+password, not both"),
    ("token format", with_cluster(token="just-a-secret"),
     "clusters[0].token: expected USER@REALM!TOKENID=SECRET"),
    ("token not ascii", with_cluster(token="a@pve!t=sécret"),
     "clusters[0].token: expected USER@REALM!TOKENID=SECRET"),
    ("sink fsync", {**base(), "sinks": {"console": {"type": "log", "fsync": "yes"}}},
     "sinks.console.fsync: expected true or false, got a string"),
    ("token and token_file", with_cluster(token_file="x.token"),
     "clusters[0]: set token or token_file, not both"),
    ("typo", with_cluster(intervall_secs=5),
     "clusters[0].intervall_secs: unknown key (did you mean interval_secs?)"),
    ("top-level typo", {**base(), "sink": {}}, "sink: unknown key (did you mean sinks?)"),
    ("bool as number", with_cluster(interval_secs=True),
     "clusters[0].interval_secs: expected a number, got a boolean"),
    ("int as bool", with_cluster(tls={"verify": 1}),
     "clusters[0].tls.verify: expected true or false, got an integer"),
    ("string as number", with_cluster(timeout_secs="10"),
     "clusters[0].timeout_secs: expected a number, got a string"),
    ("interval too small", with_cluster(interval_secs=0.5),
     "clusters[0].interval_secs: expected a number >= 1"),
    ("interval infinite", with_cluster(interval_secs=float("inf")),
     "clusters[0].interval_secs: expected a number >= 1"),
    ("timeout zero", with_cluster(timeout_secs=0),
     "clusters[0].timeout_secs: expected a number > 0"),
    ("threshold zero", with_cluster(source_failure_threshold=0),
     "clusters[0].source_failure_threshold: expected an integer from 1"),
    ("threshold float", with_cluster(source_failure_threshold=2.5),
     "clusters[0].source_failure_threshold: expected an integer, got a number"),
    ("retention zero", {**base(), "store": {"retention_days": 0}}, "store.retention_days:"),
    ("store path empty", {**base(), "store": {"path": ""}}, "store.path: must not be empty"),
    ("ftp endpoint", with_cluster(endpoints=["ftp://pve1"]),
     "clusters[0].endpoints[0]: expected an"),
    ("no host", with_cluster(endpoints=["https://"]), "clusters[0].endpoints[0]: expected an"),
    ("no scheme", with_cluster(endpoints=["pve1.example:8006"]), "clusters[0].endpoints[0]:"),
    ("bad port", with_cluster(endpoints=["https://pve1:99999"]), "clusters[0].endpoints[0]:"),
    ("endpoints a mapping", with_cluster(endpoints={"a": 1}),
     "clusters[0].endpoints: expected a list of URLs, got a mapping"),
    ("no endpoints", without(base(), "endpoints"),
     "clusters[0].endpoints: at least one endpoint URL is required"),
    ("duplicate endpoint", with_cluster(endpoints=["https://a", "https://a:8006/"]),
     "clusters[0].endpoints[1]: duplicate endpoint"),
    ("no clusters", {"store": {}}, "clusters: at least one cluster is required"),
    ("empty clusters", {"clusters": []}, "clusters: at least one cluster is required"),
    ("clusters a mapping", {"clusters": {"lab": {}}}, "clusters: expected a list of clusters"),
    ("cluster a string", {"clusters": ["lab"]}, "clusters[0]: expected a mapping, got a string"),
    ("listen no port", {**base(), "http": {"listen": "localhost"}},
     "http.listen: expected HOST:PORT"),
    ("listen bare v6", {**base(), "http": {"listen": "::1:9886"}}, "http.listen:"),
    ("listen port range", {**base(), "http": {"listen": "[::1]:70000"}}, "http.listen:"),
    ("verify false + pin", with_cluster(tls={"verify": False, "fingerprint": FP}),
     "clusters[0].tls.verify: false contradicts fingerprint"),
    ("verify false + ca", with_cluster(tls={"verify": False, "ca_file": "/nonexistent/ca.pem"}),
     "clusters[0].tls.verify: false contradicts ca_file"),
    ("ca missing", with_cluster(tls={"ca_file": "/nonexistent/ca.pem"}),
     "clusters[0].tls.ca_file: cannot read /nonexistent/ca.pem"),
    ("username only", without(with_cluster(username="root@pam"), "token"),
     "clusters[0].password: required with username"),
    ("password only", without(with_cluster(password="pw"), "token"),
     "clusters[0].username: required with password"),
    ("username format", without(with_cluster(username="root", password="pw"), "token"),
     "clusters[0].username: expected USER@REALM"),
    ("no auth", without(base(), "token"),
     "clusters[0]: set token, token_file or username+password"),
    ("name missing", without(base(), "name"), "clusters[0].name: required"),
    ("name upper", with_cluster(name="Lab"), "clusters[0].name: expected lower-case"),
    ("name int", with_cluster(name=7), "clusters[0].name: expected a string, got an integer"),
    ("sink no type", {**base(), "sinks": {"console": {"format": "json"}}},
     "sinks.console.type: required (one of log)"),
    ("sink unknown type", {**base(), "sinks": {"hook": {"type": "carrier-pigeon"}}},
     'sinks.hook.type: expected one of log, got "carrier-pigeon"'),
    ("sink name", {**base(), "sinks": {"Console": {"type": "log"}}}, "sinks.Console: sink names"),
    ("sink option typo", {**base(), "sinks": {"console": {"type": "log", "fromat": "json"}}},
     "sinks.console.fromat: unknown key (did you mean format?)"),
    ("sinks a list", {**base(), "sinks": [{"type": "log"}]},
     "sinks: expected a mapping, got a list"),
    ("top level list", [1, 2], "(top level): expected a mapping, got a list"),
    ("empty file", "", "(top level): the file is empty"),
    ("non-string key", "clusters: []\n1: x\n", "(top level): key 1 is not a string"),
]  # fmt: skip


@pytest.mark.parametrize(("doc", "expected"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_config_names_the_key_path(tmp_path: Path, doc: object, expected: str) -> None:
    found = problems(tmp_path, doc)
    assert any(p.startswith(expected) for p in found), found


def test_pin_and_ca_file_together_are_refused(tmp_path: Path) -> None:
    doc = with_cluster(tls={"fingerprint": FP, "ca_file": str(ca_pem(tmp_path))})
    assert problems(tmp_path, doc) == [
        "clusters[0].tls: set fingerprint or ca_file, not both (a pin replaces CA checks)"
    ]


def test_ca_file_must_hold_a_pem_certificate(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate")
    found = problems(tmp_path, with_cluster(tls={"ca_file": "ca.pem"}))
    assert found == [f"clusters[0].tls.ca_file: {tmp_path / 'ca.pem'} holds no PEM certificate"]


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


# ---------------------------------------------------------------- valid configs

ENDPOINTS = [
    ("https://pve1.example", "https://pve1.example:8006"),
    ("https://pve1.example:8006/", "https://pve1.example:8006"),
    ("https://pve1.example:8006/api2/json/", "https://pve1.example:8006"),
    ("http://pve1:8006/api2/json", "http://pve1:8006"),
    ("HTTPS://PVE1.Example:443", "https://pve1.example:443"),
    ("https://[fe80::1]", "https://[fe80::1]:8006"),
    ("https://10.0.0.1/pve/", "https://10.0.0.1:8006/pve"),
]


@pytest.mark.parametrize(("given_url", "expected"), ENDPOINTS)
def test_endpoints_are_normalized(tmp_path: Path, given_url: str, expected: str) -> None:
    config = load(tmp_path, with_cluster(endpoints=[given_url, "https://other"]))
    assert config.clusters[0].endpoints == (expected, "https://other:8006")


@pytest.mark.parametrize(
    ("fingerprint", "expected"),
    [
        (FP.lower(), (FP,)),
        ("ab" * 32, (FP,)),
        ([FP, FP.lower(), "CD:" * 31 + "CD"], (FP, "CD:" * 31 + "CD")),
    ],
)
def test_fingerprints_are_normalized(
    tmp_path: Path, fingerprint: object, expected: tuple[str, ...]
) -> None:
    tls = load(tmp_path, with_cluster(tls={"fingerprint": fingerprint})).clusters[0].tls
    assert (tls.fingerprints, tls.mode) == (expected, "pinned")


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
    assert [(s.name, s.type, s.options) for s in config.sinks] == [
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
    assert config.sinks[0].options == {
        "format": "json",
        "path": str(tmp_path / "events.jsonl"),
        "fsync": False,
    }


def test_insecure_and_plain_http_are_valid_with_warnings(tmp_path: Path) -> None:
    config = load(tmp_path, with_cluster(endpoints=["http://pve1"], tls={"verify": False}))
    assert config.clusters[0].tls.mode == "insecure"
    assert any(w.startswith("clusters[0].tls.verify:") for w in config.warnings)
    assert any(w.startswith("clusters[0].endpoints:") for w in config.warnings)


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


# ---------------------------------------------------------------- environment expansion

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


# ---------------------------------------------------------------- secrets from files


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


# ---------------------------------------------------------------- secrets never shown

SECRET = "TOPSECRET-4711"


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
        config = load_config(path, {})
        shown = repr(config)
    except ConfigError as e:
        shown = str(e) + repr(e.problems)
    out, err = io.StringIO(), io.StringIO()
    check_config(path, {}, out, err)
    assert SECRET not in shown + out.getvalue() + err.getvalue()


# ---------------------------------------------------------------- check-config


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
    assert check_config(write(tmp_path, doc), {}, out, err) == 0
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
    assert check_config(make_path(tmp_path), {}, out, err) == 2
    assert expected in err.getvalue()
    assert "Traceback" not in err.getvalue()
    assert out.getvalue() == ""


def test_check_config_unreadable_bytes(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_bytes(b"clusters: \xff\xfe\n")
    err = io.StringIO()
    assert check_config(path, {}, io.StringIO(), err) == 2
    assert "not UTF-8 text" in err.getvalue()


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    found = problems(tmp_path, "\n".join(lines) + "\n")
    assert any("too large" in p for p in found)


def test_the_example_is_valid(tmp_path: Path) -> None:
    (tmp_path / "lab.password").write_text("hunter2\n")
    env = {
        "PVE_TOKEN": TOKEN,
        "PVE_LAB_CA_FILE": str(ca_pem(tmp_path)),
        "CREDENTIALS_DIRECTORY": str(tmp_path),
    }
    config = load_config(REPO / "watch.yaml.example", env)
    assert [c.name for c in config.clusters] == ["prod", "lab"]
    assert [c.tls.mode for c in config.clusters] == ["pinned", "ca_file"]
    assert config.clusters[1].password == Secret("hunter2")
    assert [s.name for s in config.sinks] == ["console"]


# ---------------------------------------------------------------- properties

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
        load_config(path, env)
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
