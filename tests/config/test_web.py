"""The http section: listen, and the listener's TLS and basic auth in the shape of
Prometheus' web config (inline or from web_config_file)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pvewatch.config.load import summary_lines
from pvewatch.config.types import HttpConfig, WebTlsConfig
from pvewatch.secret import Secret
from pvewatch.simulator.certs import make_self_signed
from tests.need import tool

from .support import base, load, problems

# bcrypt("s3cret"), cost 10 (never checked here; the tests of pvewatch.http check a cost-4
# one for speed).
HASH = "$2b$10$BTUHWDoSnXEZ.0ebMAZT2.pH1K8kKIlDAKZKL8Ln8WQzmqfQtk1Su"


def cert_files(tmp: Path, name: str = "listener") -> tuple[Path, Path]:
    pair = make_self_signed(name)
    cert, key = tmp / f"{name}.crt", tmp / f"{name}.key"
    cert.write_bytes(pair.cert_pem)
    key.write_bytes(pair.key_pem)
    return cert, key


def with_http(**http: Any) -> dict[str, Any]:
    return {**base(), "http": http}


def test_default_listener_is_local_plain_and_open(tmp_path: Path) -> None:
    http = load(tmp_path, base()).http
    assert http == HttpConfig(listen="127.0.0.1:9886", tls=None, basic_auth_users={})


@pytest.mark.parametrize("off", [None, ""])
def test_an_empty_listen_turns_the_listener_off(tmp_path: Path, off: object) -> None:
    config = load(tmp_path, with_http(listen=off))
    assert config.http.listen is None
    assert "http listener off (no /metrics, /healthz, /readyz)" in summary_lines(config)


def test_listen_from_an_empty_variable_turns_it_off(tmp_path: Path) -> None:
    config = load(tmp_path, with_http(listen="${METRICS_LISTEN:-}"), env={})
    assert config.http.listen is None


def test_inline_tls_and_users(tmp_path: Path) -> None:
    cert, key = cert_files(tmp_path)
    doc = with_http(
        listen="0.0.0.0:9886",
        tls_server_config={"cert_file": "listener.crt", "key_file": str(key)},
        basic_auth_users={"prometheus": HASH},
    )
    config = load(tmp_path, doc)
    assert config.http.tls == WebTlsConfig(cert_file=cert, key_file=key)
    assert config.http.basic_auth_users == {"prometheus": Secret(HASH)}
    assert config.warnings == ()
    summary = "\n".join(summary_lines(config))
    assert "http listen 0.0.0.0:9886 (https; basic auth for 1 user(s))" in summary
    assert HASH not in summary


def test_client_certificates(tmp_path: Path) -> None:
    cert_files(tmp_path)
    ca, _ = cert_files(tmp_path, "clients")
    tls = {
        "cert_file": "listener.crt",
        "key_file": "listener.key",
        "client_ca_file": "clients.crt",
        "client_auth_type": "RequireAndVerifyClientCert",
        "min_version": "TLS13",
    }
    config = load(tmp_path, with_http(tls_server_config=tls))
    assert config.http.tls is not None
    assert config.http.tls.client_ca_file == ca
    assert (config.http.tls.client_auth_type, config.http.tls.min_version) == (
        "RequireAndVerifyClientCert",
        "TLS13",
    )


def test_web_config_file_with_paths_next_to_it(tmp_path: Path) -> None:
    web_dir = tmp_path / "web"
    web_dir.mkdir()
    cert, key = cert_files(web_dir)
    web = {
        "tls_server_config": {"cert_file": "listener.crt", "key_file": "listener.key"},
        "basic_auth_users": {"prometheus": HASH},
    }
    (web_dir / "web.yml").write_text(yaml.safe_dump(web))
    config = load(tmp_path, with_http(web_config_file="web/web.yml"))
    assert config.http.tls == WebTlsConfig(cert_file=cert, key_file=key)
    assert config.http.basic_auth_users == {"prometheus": Secret(HASH)}


def test_promtool_accepts_the_web_config_shape_pvewatch_reads(tmp_path: Path) -> None:
    cert_files(tmp_path)
    web = {
        "tls_server_config": {"cert_file": "listener.crt", "key_file": "listener.key"},
        "basic_auth_users": {"prometheus": HASH},
    }
    (tmp_path / "web.yml").write_text(yaml.safe_dump(web))
    load(tmp_path, with_http(web_config_file="web.yml"))
    checked = subprocess.run(
        [tool("promtool"), "check", "web-config", str(tmp_path / "web.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_basic_auth_without_tls_is_a_warning(tmp_path: Path) -> None:
    config = load(tmp_path, with_http(basic_auth_users={"prometheus": HASH}))
    assert config.warnings == (
        "http: basic_auth_users without tls_server_config: passwords cross in clear",
    )


WEB_PROBLEMS: list[tuple[str, dict[str, Any], str]] = [
    ("password not hash", {"basic_auth_users": {"prometheus": "hunter2"}},
     "http.basic_auth_users.prometheus: not a bcrypt hash"),
    ("hash a number", {"basic_auth_users": {"prometheus": 5}},
     "http.basic_auth_users.prometheus: expected a bcrypt hash ($2y$...), got an integer"),
    ("user with colon", {"basic_auth_users": {"a:b": HASH}},
     "http.basic_auth_users.a:b: a user name must be non-empty"),
    ("no users", {"basic_auth_users": {}}, "http.basic_auth_users: expected at least one user"),
    ("users a list", {"basic_auth_users": ["prometheus"]},
     "http.basic_auth_users: expected a mapping, got a list"),
    ("tls without key", {"tls_server_config": {"cert_file": "listener.crt"}},
     "http.tls_server_config.key_file: required with tls_server_config"),
    ("tls missing file",
     {"tls_server_config": {"cert_file": "nope.crt", "key_file": "listener.key"}},
     "http.tls_server_config.cert_file: cannot read"),
    ("tls wrong key",
     {"tls_server_config": {"cert_file": "listener.crt", "key_file": "other.key"}},
     "http.tls_server_config: cannot load cert_file"),
    ("client ca missing", {"tls_server_config": {
        "cert_file": "listener.crt", "key_file": "listener.key",
        "client_auth_type": "RequireAndVerifyClientCert"}},
     "http.tls_server_config.client_ca_file: required with client_auth_type"),
    ("client ca not pem", {"tls_server_config": {
        "cert_file": "listener.crt", "key_file": "listener.key",
        "client_ca_file": "listener.key", "client_auth_type": "VerifyClientCertIfGiven"}},
     "http.tls_server_config.client_ca_file: "),
    ("unverified client certs", {"tls_server_config": {
        "cert_file": "listener.crt", "key_file": "listener.key",
        "client_auth_type": "RequireAnyClientCert"}},
     "http.tls_server_config.client_auth_type: expected one of NoClientCert, "),
    ("tls versions", {"tls_server_config": {
        "cert_file": "listener.crt", "key_file": "listener.key",
        "min_version": "TLS13", "max_version": "TLS12"}},
     "http.tls_server_config.max_version: TLS12 is below min_version TLS13"),
    ("unsupported tls key", {"tls_server_config": {
        "cert_file": "listener.crt", "key_file": "listener.key", "cipher_suites": []}},
     "http.tls_server_config.cipher_suites: not supported by pvewatch"),
    ("unsupported web key", {"http_server_config": {"http2": False}},
     "http.http_server_config: unknown key"),
    ("typo", {"basic_auth_user": {}}, "http.basic_auth_user: unknown key (did you mean"),
    ("file and inline", {"web_config_file": "web.yml", "basic_auth_users": {"p": HASH}},
     "http: set web_config_file or basic_auth_users, not both"),
    ("file missing", {"web_config_file": "web.yml"}, "http.web_config_file: "),
]  # fmt: skip


@pytest.mark.parametrize(
    ("http", "expected"), [c[1:] for c in WEB_PROBLEMS], ids=[c[0] for c in WEB_PROBLEMS]
)
def test_web_problem_names_its_key_path(
    tmp_path: Path, http: dict[str, Any], expected: str
) -> None:
    cert_files(tmp_path)
    cert_files(tmp_path, "other")
    found = problems(tmp_path, with_http(**http))
    assert any(p.startswith(expected) for p in found), found
    assert not any("hunter2" in p or HASH in p for p in found)


def test_problems_inside_the_web_config_file_name_it(tmp_path: Path) -> None:
    web = {"basic_auth_users": {"prometheus": "plain"}, "rate_limit": {"interval": "1s"}}
    (tmp_path / "web.yml").write_text(yaml.safe_dump(web))
    found = problems(tmp_path, with_http(web_config_file="web.yml"))
    assert sorted(found) == [
        "http.web_config_file.basic_auth_users.prometheus: not a bcrypt hash "
        "(make one with: htpasswd -nBC 10 '' | tr -d ':')",
        "http.web_config_file.rate_limit: not supported by pvewatch (refused rather than ignored)",
    ]


def test_a_broken_web_config_file_is_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "web.yml").write_text("basic_auth_users: [unclosed\n")
    (found,) = problems(tmp_path, with_http(web_config_file="web.yml"))
    assert found.startswith(f"http.web_config_file: {tmp_path / 'web.yml'}: line ")


def test_the_prometheus_sink_takes_state_metrics_and_the_common_filter(tmp_path: Path) -> None:
    doc = {
        **base(),
        "sinks": {
            "prom": {"type": "prometheus", "state_metrics": False, "filter": {"types": ["node.*"]}},
            "console": {"type": "log"},
        },
    }
    sinks = {s.name: s for s in load(tmp_path, doc).sinks}
    prom, console = sinks["prom"], sinks["console"]
    assert (prom.type, prom.options.summary()) == ("prometheus", {"state_metrics": False})
    assert prom.filter is not None
    assert prom.filter.types == ("node.*",)
    assert console.type == "log"
    found = problems(tmp_path, {**base(), "sinks": {"p": {"type": "prometheus", "port": 1}}})
    assert found == ["sinks.p.port: unknown key"]
