"""Standard Webhooks signing (https://www.standardwebhooks.com/). Pure: no clock, no I/O.

Every message carries three headers:

    webhook-id         the message id: the event id, the same on every retry
    webhook-timestamp  this attempt, in unix seconds
    webhook-signature  "v1,<base64 HMAC-SHA256(key, f"{id}.{timestamp}.{body}")>", one per
                       secret, separated by spaces (several secrets: key rotation)

A secret is written `whsec_<base64 of the key>`; the key is the base64-decoded part.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence

PREFIX = "whsec_"
# The spec asks for keys of 24 to 64 bytes; shorter ones are accepted with a warning.
RECOMMENDED_KEY_BYTES = 24
MAX_KEY_BYTES = 64
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
# How far a receiver should accept a timestamp from its own clock (the spec's example).
TOLERANCE_SECS = 5 * 60


def decode_secret(secret: str) -> bytes:
    """The key of a `whsec_…` secret; ValueError (naming no part of it) when malformed."""
    if not secret.startswith(PREFIX):
        raise ValueError(f"expected the form {PREFIX}<base64>")
    try:
        key = base64.b64decode(secret[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the part after {PREFIX} is not valid base64") from None
    if not key:
        raise ValueError(f"the key after {PREFIX} is empty")
    if len(key) > MAX_KEY_BYTES:
        raise ValueError(f"the key is longer than {MAX_KEY_BYTES} bytes")
    return key


def message_id(event_ids: Sequence[str]) -> str:
    """The webhook-id of a message carrying `event_ids`: the event id itself for one event,
    else an id derived from all of them (the same events give the same id)."""
    if len(event_ids) == 1:
        return event_ids[0]
    digest = hashlib.sha256("\n".join(event_ids).encode()).hexdigest()
    return f"msg_{digest[:26]}"


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def sign(keys: Sequence[bytes], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt (no signature without keys)."""
    headers = {ID_HEADER: msg_id, TIMESTAMP_HEADER: str(timestamp)}
    if keys:
        headers[SIGNATURE_HEADER] = " ".join(signature(k, msg_id, timestamp, body) for k in keys)
    return headers


def verify(
    key: bytes,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance_secs: float = TOLERANCE_SECS,
) -> bool:
    """What a receiver does: True when one of the signatures is `key`'s over this body and
    the timestamp is within `tolerance_secs` of `now` (a replayed old message fails)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get(ID_HEADER)
    stamp = lowered.get(TIMESTAMP_HEADER, "")
    if (
        msg_id is None
        or not (stamp.isascii() and stamp.isdigit())
        or abs(now - int(stamp)) > tolerance_secs
    ):
        return False
    expected = signature(key, msg_id, int(stamp), body)
    offered = lowered.get(SIGNATURE_HEADER, "").split()
    return any(hmac.compare_digest(expected, sig) for sig in offered)
