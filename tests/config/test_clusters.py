"""The clusters section: endpoints, authentication, TLS."""

from __future__ import annotations

from pathlib import Path

import pytest

from .support import (
    FP,
    assert_reported,
    base,
    ca_pem,
    load,
    problems,
    with_cluster,
    without,
)

CLUSTER_PROBLEMS: list[tuple[str, object, str]] = [
    ("bad fingerprint", with_cluster(tls={"fingerprint": "AB:CD"}),
     "clusters[0].tls.fingerprint: expected 32 colon-separated hex bytes"),
    ("bad fingerprint in list", with_cluster(tls={"fingerprint": [FP, "zz"]}),
     "clusters[0].tls.fingerprint[1]: expected 32 colon-separated hex bytes"),
    ("duplicate name", {"clusters": [base()["clusters"][0], base()["clusters"][0]]},
     'clusters[1].name: duplicate cluster name "lab"'),
    ("token and password", with_cluster(username="root@pam", password="pw"),
     "clusters[0]: set token or username+password, not both"),
    ("token format", with_cluster(token="just-a-secret"),
     "clusters[0].token: expected USER@REALM!TOKENID=SECRET"),
    ("token not ascii", with_cluster(token="a@pve!t=sécret"),
     "clusters[0].token: expected USER@REALM!TOKENID=SECRET"),
    ("token and token_file", with_cluster(token_file="x.token"),
     "clusters[0]: set token or token_file, not both"),
    ("interval too small", with_cluster(interval_secs=0.5),
     "clusters[0].interval_secs: expected a number >= 1"),
    ("timeout zero", with_cluster(timeout_secs=0),
     "clusters[0].timeout_secs: expected a number > 0"),
    ("threshold zero", with_cluster(source_failure_threshold=0),
     "clusters[0].source_failure_threshold: expected an integer from 1"),
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
]  # fmt: skip


@pytest.mark.parametrize(
    ("doc", "expected"), [c[1:] for c in CLUSTER_PROBLEMS], ids=[c[0] for c in CLUSTER_PROBLEMS]
)
def test_cluster_problem_names_its_key_path(tmp_path: Path, doc: object, expected: str) -> None:
    assert_reported(tmp_path, doc, expected)


def test_pin_and_ca_file_together_are_refused(tmp_path: Path) -> None:
    doc = with_cluster(tls={"fingerprint": FP, "ca_file": str(ca_pem(tmp_path))})
    assert problems(tmp_path, doc) == [
        "clusters[0].tls: set fingerprint or ca_file, not both (a pin replaces CA checks)"
    ]


def test_ca_file_must_hold_a_pem_certificate(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate")
    found = problems(tmp_path, with_cluster(tls={"ca_file": "ca.pem"}))
    assert found == [f"clusters[0].tls.ca_file: {tmp_path / 'ca.pem'} holds no PEM certificate"]


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


def test_insecure_and_plain_http_are_valid_with_warnings(tmp_path: Path) -> None:
    config = load(tmp_path, with_cluster(endpoints=["http://pve1"], tls={"verify": False}))
    assert config.clusters[0].tls.mode == "insecure"
    assert any(w.startswith("clusters[0].tls.verify:") for w in config.warnings)
    assert any(w.startswith("clusters[0].endpoints:") for w in config.warnings)
