"""Webhook sinks and the delivery keys of every sink: what loads, what is refused (with
its key path, and never the secret), and the options the sink then reads."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
import yaml

from pvewatch.config.load import check_config
from pvewatch.config.types import DeliveryConfig, RetryConfig, SinkConfig, TlsConfig
from pvewatch.secret import Secret
from pvewatch.sinks.formats.base import FormatOptions
from pvewatch.sinks.table import SINK_TYPES
from pvewatch.sinks.webhook_options import WebhookOptions
from tests.config.support import base, ca_pem, commented_sink, load, problems, write

KEY = base64.b64encode(b"k" * 32).decode()
WHSEC = f"whsec_{KEY}"
URL = "https://hooks.example/T0KEN-IN-PATH"


def hook(**options: Any) -> dict[str, Any]:
    return {**base(), "sinks": {"hook": {"type": "webhook", "url": URL, **options}}}


def webhook(sink: SinkConfig) -> WebhookOptions:
    assert isinstance(sink.options, WebhookOptions)
    return sink.options


def test_a_minimal_webhook_gets_every_option_with_its_default(tmp_path: Path) -> None:
    (sink,) = load(tmp_path, hook()).sinks
    assert sink.options == WebhookOptions(
        url=Secret(URL),
        method="POST",
        headers={},
        timeout_secs=10.0,
        tls=TlsConfig(),
        secret=(),
        format=FormatOptions("native"),
    )
    assert sink.delivery == DeliveryConfig()


def test_every_webhook_option(tmp_path: Path) -> None:
    (tmp_path / "auth").write_text("Bearer s3cr3t\n")
    (tmp_path / "old.key").write_text(WHSEC + "\n")
    ca = ca_pem(tmp_path)
    doc = hook(
        method="put",
        headers={"X-Team": "${TEAM}", "Authorization_file": "auth"},
        timeout_secs=2.5,
        tls={"verify": True, "ca_file": str(ca)},
        secret_file=["old.key", "old.key"],
        format="slack",
    )
    (sink,) = load(tmp_path, doc, {"TEAM": "infra"}).sinks
    o = webhook(sink)
    assert (o.method, o.timeout_secs, o.format) == ("PUT", 2.5, FormatOptions("slack"))
    assert o.headers == {"X-Team": Secret("infra"), "Authorization": Secret("Bearer s3cr3t")}
    assert o.tls == TlsConfig(verify=True, ca_file=ca)
    assert o.secret == (Secret(WHSEC), Secret(WHSEC))


def test_url_file_and_a_list_of_inline_secrets(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "hook.url").write_text(URL + "\n")
    doc = {**base(), "sinks": {"hook": {"type": "webhook", "url_file": "hook.url"}}}
    doc["sinks"]["hook"]["secret"] = [WHSEC, "whsec_" + base64.b64encode(b"j" * 24).decode()]
    (sink,) = load(tmp_path, doc, {"CREDENTIALS_DIRECTORY": str(creds)}).sinks
    assert webhook(sink).url == Secret(URL)
    assert len(webhook(sink).secret) == 2


def test_delivery_keys_for_any_sink(tmp_path: Path) -> None:
    doc = hook(
        retry={"initial_secs": 2, "max_secs": 600, "max_attempts": 10, "max_age_secs": 7200},
        concurrency=8,
        max_per_minute=0,
        group_wait_secs=0,
    )
    doc["sinks"]["log"] = {"type": "log", "concurrency": "${N}", "retry": {"max_secs": 5}}
    hook_sink, log_sink = load(tmp_path, doc, {"N": "2"}).sinks
    assert hook_sink.delivery == DeliveryConfig(RetryConfig(2, 600, 10, 7200), 8, 0, 0.0)
    assert log_sink.delivery.concurrency == 2
    assert log_sink.delivery.retry == RetryConfig(initial_secs=1, max_secs=5)
    assert "retry" not in log_sink.options.summary()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"url": None}, "sinks.hook.url: required (or url_file)"),
        ({"url": "ftp://hooks.example/x"}, "sinks.hook.url: expected an http:// or https:// URL"),
        ({"url": "https:///path-only"}, "sinks.hook.url: expected an http:// or https:// URL"),
        ({"url": "https://h:99999/"}, "sinks.hook.url: not a valid URL"),
        ({"url_file": "nope"}, "sinks.hook: set url or url_file, not both"),
        ({"method": "GET"}, 'sinks.hook.method: expected one of POST, PUT, got "GET"'),
        ({"timeout_secs": 0}, "sinks.hook.timeout_secs: expected a number > 0"),
        ({"headers": {"Bad Name": "x"}}, "sinks.hook.headers.Bad Name: not a valid HTTP header"),
        ({"headers": {"X-A": "a\r\nX-Injected: 1"}}, "sinks.hook.headers.X-A: control characters"),
        ({"headers": {"webhook-id": "x"}}, "sinks.hook.headers.webhook-id: set by pvewatch"),
        ({"headers": {"X-A": "1", "x-a": "2"}}, "sinks.hook.headers.x-a: set twice"),
        ({"headers": {"X-A": "1", "X-A_file": "f"}}, "sinks.hook.headers: set X-A or X-A_file"),
        ({"headers": ["X-A: 1"]}, "sinks.hook.headers: expected a mapping, got a list"),
        ({"tls": {"verify": False, "ca_file": "ca.pem"}}, "sinks.hook.tls.verify: false contra"),
        ({"tls": {"fingerprint": "AB"}}, "sinks.hook.tls.fingerprint: unknown key"),
        ({"secret": "not-whsec"}, "sinks.hook.secret: not a webhook secret: expected the form"),
        ({"secret": ["whsec_!!"]}, "sinks.hook.secret[0]: not a webhook secret: the part after"),
        ({"secret": []}, "sinks.hook.secret: empty"),
        ({"secret": [5]}, "sinks.hook.secret[0]: expected a string, got an integer"),
        ({"secret": WHSEC, "secret_file": "k"}, "sinks.hook: set secret or secret_file, not both"),
        ({"secret_file": "missing.key"}, "sinks.hook.secret_file: cannot read"),
        ({"format": "pager"}, "sinks.hook.format: expected one of native"),
        ({"retry": {"initial_secs": 10, "max_secs": 5}}, "sinks.hook.retry.max_secs: must be >="),
        ({"retry": {"max_attempts": 0}}, "sinks.hook.retry.max_attempts: expected an integer"),
        ({"retry": {"wait": 1}}, "sinks.hook.retry.wait: unknown key"),
        ({"retry": 3}, "sinks.hook.retry: expected a mapping, got an integer"),
        ({"concurrency": 0}, "sinks.hook.concurrency: expected an integer from 1 to 64"),
        ({"max_per_minute": -1}, "sinks.hook.max_per_minute: expected an integer from 0"),
        ({"group_wait_secs": "soon"}, "sinks.hook.group_wait_secs: expected a number"),
    ],
)
def test_problems_name_the_key(tmp_path: Path, options: dict[str, Any], expected: str) -> None:
    (tmp_path / "ca.pem").write_bytes(ca_pem(tmp_path).read_bytes())
    doc = hook(**options)
    if doc["sinks"]["hook"]["url"] is None:
        del doc["sinks"]["hook"]["url"]
    found = problems(tmp_path, doc)
    assert any(p.startswith(expected) for p in found), found


@pytest.mark.parametrize(
    "options",
    [
        {"url": "https://hooks.example/T0KEN-IN-PATH?x=%zz"},
        {"url": "ftp://hooks.example/T0KEN-IN-PATH"},
        {"secret": "T0KEN-IN-PATH"},
        {"secret": "whsec_T0KEN-IN-PATH!"},
        {"headers": {"Authorization": "Bearer T0KEN-IN-PATH\n"}},
    ],
)
def test_secrets_never_appear_in_problems_or_summaries(
    tmp_path: Path, options: dict[str, Any]
) -> None:
    doc = hook(**options, retry={"max_attempts": 0})  # one sure problem beside
    assert "T0KEN" not in "\n".join(problems(tmp_path, doc))
    good = hook(headers={"Authorization": "Bearer T0KEN-IN-PATH"}, secret=WHSEC)
    out, err = io.StringIO(), io.StringIO()
    assert check_config(write(tmp_path, good), {}, out, err, sink_types=SINK_TYPES) == 0
    assert "sink hook: webhook" in out.getvalue()
    assert "T0KEN" not in out.getvalue() + err.getvalue()
    assert KEY not in out.getvalue()


def test_warnings_for_plain_http_short_keys_and_no_verification(tmp_path: Path) -> None:
    short = "whsec_" + base64.b64encode(b"k" * 8).decode()
    doc = hook(url="http://hooks.example/x", secret=short, tls={"verify": False})
    warnings = load(tmp_path, doc).warnings
    assert any(w.startswith("sinks.hook.url: plain http") for w in warnings)
    assert any(w.startswith("sinks.hook.secret: a key of 8 bytes is short") for w in warnings)
    assert any(w.startswith("sinks.hook.tls.verify: false") for w in warnings)


def test_the_commented_webhook_in_the_example_is_valid(tmp_path: Path) -> None:
    """watch.yaml.example's `hook` sink, uncommented, loads as documented."""
    (tmp_path / "hook.secret").write_text(WHSEC + "\n")
    doc = yaml.safe_dump(base()) + "sinks:\n" + commented_sink("hook")
    (sink,) = load(tmp_path, doc, {"HOOK_URL": URL, "CREDENTIALS_DIRECTORY": str(tmp_path)}).sinks
    assert (sink.name, sink.type, webhook(sink).format.format) == ("hook", "webhook", "native")
    assert webhook(sink).headers == {"X-Source": Secret("pvewatch")}
    assert webhook(sink).secret == (Secret(WHSEC),)
    assert sink.delivery == DeliveryConfig(RetryConfig(), 4, 0, 0.0)
