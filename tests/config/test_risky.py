"""Risky setups: a listener others can reach with nobody authenticated, a pinned cluster with
a plain-http endpoint (an error), inline secrets in a file others can read, weak bcrypt
hashes. Each is a table: the document (and file mode), and the warning expected or none."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from pvewatch.config.load import check_config, load_config
from pvewatch.sinks.table import SINK_TYPES

from .support import FP, SECRET, TOKEN, base, ca_pem, problems, with_cluster, write
from .test_web import HASH, cert_files

OPEN_LISTENER = "is reachable from other machines and nothing authenticates clients"


def _http(**http: Any) -> dict[str, Any]:
    return {**base(), "http": http}


def _warnings(
    tmp_path: Path, doc: object, mode: int = 0o600, env: dict[str, str] | None = None
) -> list[str]:
    path = write(tmp_path, doc)
    path.chmod(mode)
    return list(load_config(path, env or {}, sink_types=SINK_TYPES).warnings)


LISTENERS: list[tuple[str, str | None, dict[str, Any], bool]] = [
    ("all IPv4 interfaces", "0.0.0.0:9886", {}, True),
    ("all IPv6 interfaces", "[::]:9886", {}, True),
    ("a LAN address", "192.0.2.10:9886", {}, True),
    ("a host name", "monitor.example:9886", {}, True),
    ("loopback", "127.0.0.1:9886", {}, False),
    ("another loopback address", "127.0.0.53:9886", {}, False),
    ("IPv6 loopback", "[::1]:9886", {}, False),
    ("localhost", "localhost:9886", {}, False),
    ("off", None, {}, False),
    ("basic auth", "0.0.0.0:9886", {"basic_auth_users": {"prometheus": HASH}}, False),
    ("TLS without client certificates", "0.0.0.0:9886", {"tls": "NoClientCert"}, True),
    ("TLS, certificates if given", "0.0.0.0:9886", {"tls": "VerifyClientCertIfGiven"}, True),
    ("TLS, client certificates", "0.0.0.0:9886", {"tls": "RequireAndVerifyClientCert"}, False),
]  # fmt: skip


@pytest.mark.parametrize(("listen", "extra", "warned"), [c[1:] for c in LISTENERS],
                         ids=[c[0] for c in LISTENERS])  # fmt: skip
def test_a_listener_others_reach_without_auth_is_a_warning(
    tmp_path: Path, listen: str | None, extra: dict[str, Any], warned: bool
) -> None:
    http: dict[str, Any] = {"listen": listen, **extra}
    if "tls" in http:
        cert, key = cert_files(tmp_path)
        ca = ca_pem(tmp_path)
        auth = http.pop("tls")
        http["tls_server_config"] = {"cert_file": str(cert), "key_file": str(key)}
        if auth != "NoClientCert":
            http["tls_server_config"] |= {"client_auth_type": auth, "client_ca_file": str(ca)}
    found = [w for w in _warnings(tmp_path, _http(**http)) if OPEN_LISTENER in w]
    assert found == ([f"http.listen: {listen} {OPEN_LISTENER} (/metrics lists every guest,"
                      " node, pool and tag): set basic_auth_users with tls_server_config, or"
                      " listen on 127.0.0.1"] if warned else [])  # fmt: skip


def test_check_config_prints_the_warning_and_still_succeeds(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    path = write(tmp_path, _http(listen="0.0.0.0:9886"))
    assert check_config(path, {}, out, err, sink_types=SINK_TYPES) == 0
    assert f"WARNING: http.listen: 0.0.0.0:9886 {OPEN_LISTENER}" in out.getvalue()


PLAIN_HTTP: list[tuple[str, list[str], dict[str, Any], str]] = [
    ("pinned, the only endpoint plain", ["http://pve1:8006"], {"fingerprint": FP},
     "clusters[0].endpoints: http://pve1:8006 is plain http, but tls.fingerprint pins"),
    ("pinned, a plain failover endpoint", ["https://pve1", "http://pve2:8006"],
     {"fingerprint": FP},
     "clusters[0].endpoints: http://pve2:8006 is plain http, but tls.fingerprint pins"),
    ("a CA, a plain failover endpoint", ["https://pve1", "http://pve2"], {"ca_file": "ca.pem"},
     "clusters[0].endpoints: http://pve2 is plain http, but tls.ca_file checks"),
]  # fmt: skip


@pytest.mark.parametrize(("endpoints", "tls", "expected"), [c[1:] for c in PLAIN_HTTP],
                         ids=[c[0] for c in PLAIN_HTTP])  # fmt: skip
def test_a_checked_cluster_with_a_plain_http_endpoint_is_an_error(
    tmp_path: Path, endpoints: list[str], tls: dict[str, Any], expected: str
) -> None:
    ca_pem(tmp_path)
    found = problems(tmp_path, with_cluster(endpoints=endpoints, tls=tls))
    assert [p for p in found if "plain http" in p] == [
        expected + " the server's certificate: the credentials would travel in clear to an"
        " unchecked server; use https://"
    ]


def test_plain_http_without_any_tls_setting_stays_a_warning(tmp_path: Path) -> None:
    warnings = _warnings(tmp_path, with_cluster(endpoints=["http://pve1", "http://pve2"]))
    assert "clusters[0].endpoints: plain http: credentials and data travel unencrypted" in (
        warnings
    )


def _env_token(**doc: Any) -> dict[str, Any]:
    """A cluster whose token comes from ${PVE_TOKEN}, with more of the document."""
    return with_cluster(token="${PVE_TOKEN}") | doc


def _hook(**options: Any) -> dict[str, Any]:
    return _env_token(sinks={"hook": {"type": "webhook", **options}})


def _token_file(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "lab.token").write_text(TOKEN)
    doc = base()
    del doc["clusters"][0]["token"]
    doc["clusters"][0]["token_file"] = "lab.token"
    return doc


def _postgres(dsn: str) -> dict[str, Any]:
    return _env_token(store={"type": "postgres", "dsn": dsn})


_ENV = {"PVE_TOKEN": TOKEN}
RECEIVER = "https://hooks.example.com/pvewatch"
SLACK = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
PASSWORD = {"clusters": [{"name": "lab", "endpoints": ["https://pve1"], "username": "root@pam",
                          "password": SECRET}]}  # fmt: skip
INLINE: list[tuple[str, Any, int, list[str]]] = [
    ("a token, mode 0644", lambda _: base(), 0o644, ["clusters[0].token"]),
    ("a token, mode 0640", lambda _: base(), 0o640, ["clusters[0].token"]),
    ("a token, mode 0604", lambda _: base(), 0o604, ["clusters[0].token"]),
    ("a token, mode 0600", lambda _: base(), 0o600, []),
    ("a token_file, mode 0644", _token_file, 0o644, []),
    ("a token from ${PVE_TOKEN}", lambda _: _env_token(), 0o644, []),
    ("a password", lambda _: PASSWORD, 0o644, ["clusters[0].password"]),
    ("a signing secret", lambda _: _hook(url=RECEIVER, secret="whsec_" + "A" * 32), 0o644,
     ["sinks.hook.secret"]),
    ("a receiver URL", lambda _: _hook(url=RECEIVER), 0o644, []),
    ("a Slack URL", lambda _: _hook(url=SLACK), 0o644, ["sinks.hook.url"]),
    ("a URL with a query", lambda _: _hook(url="https://gotify.example/message?token=Axxxx"),
     0o644, ["sinks.hook.url"]),
    ("an Authorization header",
     lambda _: _hook(url=RECEIVER, headers={"Authorization": "Bearer abc"}), 0o644,
     ["sinks.hook.headers.Authorization"]),
    ("an X-Team header", lambda _: _hook(url=RECEIVER, headers={"X-Team": "infra"}), 0o644, []),
    ("a DSN with a password", lambda _: _postgres("postgresql://pvewatch:pw@db/pvewatch"),
     0o644, ["store.dsn"]),
    ("a key/value DSN with a password", lambda _: _postgres("host=db password=pw"), 0o644,
     ["store.dsn"]),
    ("a DSN without one", lambda _: _postgres("postgresql://pvewatch@db/pvewatch"), 0o644, []),
    ("four secrets", lambda _: _hook(url=SLACK, secret="whsec_" + "A" * 32,
                                    headers={"X-Api-Key": "k", "Cookie": "c"}), 0o644,
     ["sinks.hook.url", "sinks.hook.headers.Cookie", "sinks.hook.headers.X-Api-Key",
      "and 1 more"]),
]  # fmt: skip


@pytest.mark.parametrize(("make", "mode", "keys"), [c[1:] for c in INLINE],
                         ids=[c[0] for c in INLINE])  # fmt: skip
def test_inline_secrets_in_a_file_others_can_read_are_a_warning(
    tmp_path: Path, make: Any, mode: int, keys: list[str]
) -> None:
    warnings = _warnings(tmp_path, make(tmp_path), mode, _ENV)
    path = tmp_path / "watch.yaml"
    found = [w for w in warnings if w.startswith(f"{path}:")]
    if not keys:
        assert found == []
        return
    listed = ", ".join(keys[:3]) + "".join(f" {k}" for k in keys[3:])
    assert found == [
        f"{path}: readable by group or others (mode {mode:04o}) and holds secrets inline"
        f" ({listed}): move them to *_file keys (systemd credentials, Docker"
        f" secrets) or chmod 600 {path}"
    ]
    assert SECRET not in found[0]
    assert TOKEN not in found[0]


BCRYPT: list[tuple[str, bool]] = [
    ("$2b$04$Xj2nZ1wnO1VK2sUKVfzZhO59DcE8tZY0ifr.bgQgwZRBz00mwLi92", True),
    ("$2y$09$" + "a" * 53, True),
    (HASH, False),
    ("$2y$12$" + "a" * 53, False),
]


@pytest.mark.parametrize(("hashed", "warned"), BCRYPT)
def test_a_bcrypt_cost_below_10_is_a_warning(tmp_path: Path, hashed: str, warned: bool) -> None:
    cost = hashed.split("$")[2]
    doc = _http(basic_auth_users={"prometheus": hashed})
    found = [w for w in _warnings(tmp_path, doc) if "bcrypt cost" in w]
    assert found == ([
        f"http.basic_auth_users.prometheus: bcrypt cost {cost} is below 10: a leaked hash is"
        " cheap to crack; make a new one with: htpasswd -nBC 10 '' | tr -d ':'"
    ] if warned else [])  # fmt: skip
