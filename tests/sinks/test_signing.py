"""Standard Webhooks signing: known vectors, and verify(sign(x)) for any body and secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvewatch.sinks import signing

# The example of the Standard Webhooks reference libraries (standard-webhooks/webhooks).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_spec_example() -> None:
    key = signing.decode_secret(SPEC_SECRET)
    assert signing.signature(key, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_headers_carry_one_signature_per_secret() -> None:
    keys = [b"k" * 24, b"j" * 32]
    headers = signing.sign(keys, "evt_1", 1700000000, b"{}")
    assert headers["webhook-id"] == "evt_1"
    assert headers["webhook-timestamp"] == "1700000000"
    sigs = headers["webhook-signature"].split(" ")
    assert sigs == [signing.signature(k, "evt_1", 1700000000, b"{}") for k in keys]
    assert all(signing.verify(k, headers, b"{}", now=1700000000) for k in keys)


def test_no_secret_no_signature() -> None:
    assert signing.sign([], "evt_1", 1, b"x") == {"webhook-id": "evt_1", "webhook-timestamp": "1"}


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_"),
        ("whsec_not base64!", "base64"),
        ("whsec_", "empty"),
        ("whsec_" + base64.b64encode(b"x" * 65).decode(), "64"),
    ],
)
def test_malformed_secrets_are_refused_without_quoting_them(secret: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as e:
        signing.decode_secret(secret)
    if secret != "whsec_":
        assert secret.removeprefix("whsec_") not in str(e.value)


def test_message_id_of_one_event_is_the_event_id_and_of_a_burst_derived() -> None:
    assert signing.message_id(["evt_a"]) == "evt_a"
    burst = signing.message_id(["evt_a", "evt_b"])
    assert burst.startswith("msg_")
    assert burst == signing.message_id(["evt_a", "evt_b"])
    assert burst != signing.message_id(["evt_b", "evt_a"])
    assert burst != signing.message_id(["evt_a", "evt_b", "evt_c"])


def test_verify_refuses_tampering_and_old_timestamps() -> None:
    key = b"s" * 32
    headers = signing.sign([key], "evt_1", 1000, b"body")
    assert signing.verify(key, headers, b"body", now=1000)
    assert not signing.verify(key, headers, b"bodY", now=1000)
    assert not signing.verify(b"t" * 32, headers, b"body", now=1000)
    assert not signing.verify(key, {**headers, "webhook-id": "evt_2"}, b"body", now=1000)
    assert not signing.verify(key, headers, b"body", now=1000 + 301)
    assert not signing.verify(
        key, {**headers, "webhook-timestamp": "\uff11\uff10\uff10\uff10"}, b"body", now=1000
    )
    assert not signing.verify(key, {}, b"body", now=1000)


secrets = st.binary(min_size=1, max_size=64)


@given(
    keys=st.lists(secrets, min_size=1, max_size=3),
    msg_id=st.text(min_size=1, max_size=40).filter(lambda s: s.isprintable()),
    timestamp=st.integers(0, 2**40),
    body=st.binary(max_size=2000),
)
def test_verify_of_sign_holds_for_any_body_and_secret(
    keys: list[bytes], msg_id: str, timestamp: int, body: bytes
) -> None:
    headers = signing.sign(keys, msg_id, timestamp, body)
    for key in keys:
        assert signing.verify(key, headers, body, now=timestamp)
        # A secret in its written form decodes to the same key.
        written = signing.PREFIX + base64.b64encode(key).decode()
        assert signing.decode_secret(written) == key


@given(key=secrets, timestamp=st.integers(0, 2**40), body=st.binary(max_size=500))
def test_signature_is_hmac_sha256_of_id_timestamp_body(
    key: bytes, timestamp: int, body: bytes
) -> None:
    # Written out from the spec, independently of the module.
    mac = hmac.new(key, b"evt_x." + str(timestamp).encode() + b"." + body, hashlib.sha256)
    expected = "v1," + base64.b64encode(mac.digest()).decode()
    assert signing.signature(key, "evt_x", timestamp, body) == expected


def test_the_documented_receiver_verifies_what_pvewatch_signs() -> None:
    sinks_doc = (Path(__file__).resolve().parents[2] / "docs" / "sinks.md").read_text()
    section = sinks_doc.split("### Signing", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # noqa: S102 — the docs' own example
    verify = namespace["verify"]
    now = int(time.time())
    body = b'{"type": "guest.stopped"}'
    headers = signing.sign([b"x" * 32, KEY_B], "evt_1", now, body)
    assert verify("whsec_" + base64.b64encode(b"x" * 32).decode(), headers, body)
    assert verify("whsec_" + base64.b64encode(KEY_B).decode(), headers, body)
    assert not verify("whsec_" + base64.b64encode(b"y" * 32).decode(), headers, body)
    assert not verify("whsec_" + base64.b64encode(KEY_B).decode(), headers, body + b" ")
    old = signing.sign([KEY_B], "evt_1", now - 3600, body)
    assert not verify("whsec_" + base64.b64encode(KEY_B).decode(), old, body)


KEY_B = b"rotated-key-of-24-bytes!"
