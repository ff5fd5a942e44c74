"""Who may ask the listener: basic auth against bcrypt hashes (bcrypt is imported here only).

An `Auth` answers in two steps so that the listener's event loop never runs bcrypt:
`quick` decides what is cheap to decide (no users, a malformed header, a password that
passed before), `check` does the slow rest on the listener's worker thread. A route may
bring an `Auth` of its own (a bearer token for the notification ingest, say).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable, Mapping
from typing import Protocol

import bcrypt

from pvewatch.secret import Secret


class Auth(Protocol):
    @property
    def challenge(self) -> str:
        """The `WWW-Authenticate` header of a 401."""
        ...

    def quick(self, authorization: str | None) -> bool | None:
        """True or False when that is cheap to tell; None: ask `check`."""
        ...

    def check(self, authorization: str | None) -> bool:
        """The slow, complete decision (run on a worker thread)."""
        ...


class BasicAuth:
    """Checks `Authorization: Basic ...` against bcrypt hashes; no users: everyone passes.

    bcrypt is slow on purpose and Prometheus sends the same password on every scrape, so
    the digest of the last password that passed is kept per user (as exporter-toolkit
    caches). An unknown user costs one bcrypt too, so timing does not tell users apart."""

    challenge = 'Basic realm="pvewatch", charset="UTF-8"'

    def __init__(self, users: Mapping[str, Secret]) -> None:
        self._hashes = {user: h.reveal().encode() for user, h in users.items()}
        self._passed: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._decoy = b""
        if self._hashes:
            cost = max(int(h.split(b"$")[2]) for h in self._hashes.values())
            self._decoy = bcrypt.hashpw(b"decoy", bcrypt.gensalt(rounds=cost))

    @property
    def enabled(self) -> bool:
        return bool(self._hashes)

    def quick(self, authorization: str | None) -> bool | None:
        if not self._hashes:
            return True
        credentials = _basic_credentials(authorization)
        if credentials is None:
            return False
        user, password = credentials
        with self._lock:
            passed = self._passed.get(user)
        if passed is not None and hmac.compare_digest(passed, _digest(user, password)):
            return True
        return None

    def check(self, authorization: str | None) -> bool:
        quick = self.quick(authorization)
        if quick is not None:
            return quick
        credentials = _basic_credentials(authorization)
        assert credentials is not None
        user, password = credentials
        hashed = self._hashes.get(user)
        try:
            ok = bcrypt.checkpw(password, hashed or self._decoy) and hashed is not None
        except ValueError:  # a password over 72 bytes (bcrypt 5 refuses it)
            ok = False
        if ok:
            with self._lock:
                self._passed[user] = _digest(user, password)
        return ok


def basic_user(headers: Mapping[str, str]) -> str | None:
    """The user name of a request's basic auth (already checked), for the record."""
    credentials = _basic_credentials(headers.get("Authorization"))
    return None if credentials is None else credentials[0]


def _digest(user: str, password: bytes) -> bytes:
    return hashlib.sha256(user.encode() + b"\0" + password).digest()


def _basic_credentials(header: str | None) -> tuple[str, bytes] | None:
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    return user.decode("utf-8", "replace"), password


class BearerAuth:
    """Checks `Authorization: Bearer <token>` in constant time; `token` None (a name
    nobody configured) refuses everyone after the same comparison, so an answer does not
    tell a configured name from an unknown one. `on_refused` is told of each refusal."""

    challenge = 'Bearer realm="pvewatch"'

    def __init__(self, token: Secret | None, on_refused: Callable[[], None] = lambda: None) -> None:
        self._expected = hashlib.sha256(b"Bearer " + _token_bytes(token)).digest()
        self._known = token is not None
        self._on_refused = on_refused

    def quick(self, authorization: str | None) -> bool:
        given = hashlib.sha256((authorization or "").strip().encode("utf-8", "replace")).digest()
        ok = hmac.compare_digest(given, self._expected) and self._known
        if not ok:
            self._on_refused()
        return ok

    def check(self, authorization: str | None) -> bool:
        return self.quick(authorization)


def _token_bytes(token: Secret | None) -> bytes:
    # An unknown name compares against a random token nobody has.
    return token.reveal().encode() if token is not None else secrets.token_hex(32).encode()
