"""Authentication of the simulated API, as PVE does it (FACTS.md §6): API tokens, tickets
with CSRF tokens, renewal by posting the ticket as the password, a 2 h lifetime.

With no token and no user configured the simulator is open: every request is accepted
without credentials and any login succeeds (handy for demos; say so when starting).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from pvewatch.errors import ConfigError
from pvewatch.secret import Secret

TICKET_LIFETIME_SECS = 7200
CLOCK_SKEW_GRACE_SECS = 300
NO_TICKET = "No ticket"
AUTH_FAILED = "Authentication failed!"
BAD_CSRF = "Permission denied - invalid csrf token"
CAPS = {
    "vms": {"VM.Audit": 1},
    "storage": {"Datastore.Audit": 1},
    "nodes": {"Sys.Audit": 1},
    "dc": {"Sys.Audit": 1},
    "access": {},
    "sdn": {},
    "mapping": {},
}


@dataclass(frozen=True, slots=True)
class AuthResult:
    user: str | None  # who made the request; None when refused
    reason: str = ""  # the 401 reason phrase when refused


class Authenticator:
    def __init__(
        self,
        tokens: Iterable[str],
        user: str | None,
        password: str | None,
        clock: Callable[[], float],
    ) -> None:
        self._tokens: dict[str, Secret] = {}
        for spec in tokens:
            tokenid, sep, secret = spec.rpartition("=")
            if not sep or "!" not in tokenid or "@" not in tokenid:
                raise ConfigError(["tokens: each must look like USER@REALM!ID=SECRET"])
            self._tokens[tokenid] = Secret(secret)
        self._user = user
        self._password = Secret(password or "")
        self._clock = clock
        self._key = secrets.token_bytes(32)

    @property
    def open(self) -> bool:
        return not self._tokens and self._user is None

    def authenticate(
        self, method: str, cookie: str | None, authorization: str | None, csrf: str | None
    ) -> AuthResult:
        """Precedence as on PVE: cookie ticket, `PVEAuthCookie=` header, API token."""
        if self.open:
            return AuthResult("root@pam")
        ticket = _cookie_ticket(cookie)
        if ticket is None and authorization and authorization.startswith("PVEAuthCookie="):
            ticket = unquote(authorization[len("PVEAuthCookie=") :].split(";")[0])
        if ticket is not None:
            user = self.ticket_user(ticket)
            if user is None:
                return AuthResult(None, AUTH_FAILED)
            if method != "GET" and not self._csrf_ok(csrf, user):
                return AuthResult(None, BAD_CSRF)
            return AuthResult(user)
        if authorization and authorization.startswith("PVEAPIToken"):
            return self._token(authorization[len("PVEAPIToken") :])
        return AuthResult(None, NO_TICKET)

    def login(self, params: dict[str, str]) -> dict[str, Any] | None:
        """POST /access/ticket: the answer's `data`, or None for `authentication failure`."""
        username = params.get("username", "")
        realm = params.get("realm")
        if "@" not in username and realm:
            username = f"{username}@{realm}"
        password = params.get("password", "")
        renewed_from = self.ticket_user(password) if password.startswith("PVE:") else None
        by_password = (
            bool(self._password)
            and username == self._user
            and (hmac.compare_digest(password.encode(), self._password.reveal().encode()))
        )
        renewal = renewed_from is not None and renewed_from in (username, "root@pam")
        if not (self.open or by_password or renewal) or not username:
            return None
        stamp = f"{int(self._clock()):08X}"
        plain = f"PVE:{username}:{stamp}"
        return {
            "username": username,
            "ticket": f"{plain}::{self._sign(plain)}",
            "CSRFPreventionToken": f"{stamp}:{self._csrf_sig(stamp, username)}",
            "clustername": "pvewatch-sim",
            "cap": CAPS,
        }

    def ticket_user(self, ticket: str) -> str | None:
        plain, sep, signature = ticket.rpartition("::")
        parts = plain.split(":")
        if not sep or len(parts) != 3 or parts[0] != "PVE":
            return None
        if not hmac.compare_digest(signature.encode(), self._sign(plain).encode()):
            return None
        return parts[1] if self._fresh(parts[2]) else None

    def _token(self, rest: str) -> AuthResult:
        if rest[:1] in ("=", " "):
            rest = rest[1:]
        tokenid, sep, secret = unquote(rest.split(";")[0]).rpartition("=")
        expected = self._tokens.get(tokenid)
        if not sep or expected is None:
            return AuthResult(None, AUTH_FAILED)
        if not hmac.compare_digest(secret.encode(), expected.reveal().encode()):
            return AuthResult(None, AUTH_FAILED)
        return AuthResult(tokenid)

    def _csrf_ok(self, token: str | None, user: str) -> bool:
        stamp, sep, signature = (token or "").partition(":")
        if not sep or not self._fresh(stamp):
            return False
        return hmac.compare_digest(signature.encode(), self._csrf_sig(stamp, user).encode())

    def _fresh(self, stamp: str) -> bool:
        try:
            issued = int(stamp, 16)
        except ValueError:
            return False
        age = self._clock() - issued
        return -CLOCK_SKEW_GRACE_SECS < age < TICKET_LIFETIME_SECS

    def _sign(self, plain: str) -> str:
        # 256 bytes, like the 2048-bit RSA signature of real tickets (344 base64 chars).
        blocks = [
            hmac.new(self._key, f"{i}:{plain}".encode(), hashlib.sha256).digest() for i in range(8)
        ]
        return base64.b64encode(b"".join(blocks)).decode()

    def _csrf_sig(self, stamp: str, user: str) -> str:
        digest = hmac.new(self._key, f"{stamp}:{user}".encode(), hashlib.sha256).digest()
        return base64.b64encode(digest).decode().rstrip("=")


def _cookie_ticket(cookie: str | None) -> str | None:
    for part in (cookie or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name == "PVEAuthCookie":
            return unquote(value)
    return None
