"""The PVE API client: the only code that knows PVE URLs, auth, timeouts and failover.

Every method returns the answer's `data` or raises a `SourceError`; a failed or partial
answer is never turned into an empty list. httpx errors are translated in `_send_once`,
the one place that calls httpx. Errors name the endpoint and the path, never a secret.

Auth is an API token (stateless) or a ticket from username/password: the ticket is
renewed after an hour (it lives two), and a 401 leads to one fresh login and one retry.
Requests in flight when a login is refused fail with that refusal: one per poll.
A request tries each endpoint once, starting from the one that worked last.

An answer is bounded: `timeout_secs` is the whole request to one endpoint (connect, send,
every byte of the answer), and its body is read up to `max_response_bytes` (decoded), so
a server that trickles or floods ends as one failed poll (`SourceTimeout`,
`SourceBadResponse`) instead of holding the poll or the memory.

Over 350 lines: one class, the one place that calls httpx for PVE, with the
translation of every transport and HTTP error beside the calls.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx
import msgspec

from pvewatch.config.types import ClusterConfig
from pvewatch.config.values import API_PREFIX, TOKEN, endpoint_url
from pvewatch.errors import (
    ConfigError,
    SourceAuthError,
    SourceBadResponse,
    SourceError,
    SourceTimeout,
    SourceUnreachable,
)
from pvewatch.net.tls import build_transport
from pvewatch.pve.inflate import InflateError, Inflater
from pvewatch.pve.stable import decode_stable
from pvewatch.secret import Secret
from pvewatch.watch.rows import StableRows

RENEW_AFTER_SECS = 3600.0
# A ticket lives 7200 s; past this age renewing with it is hopeless, log in afresh.
RELOGIN_AFTER_SECS = 7200.0 - 300.0
# At most 100 requests a second to one cluster (a burst of task logs, `pvewatch api`).
# Each poll makes three requests in a row: 50 ms here added ~100 ms to every detection.
DEFAULT_MIN_INTERVAL_SECS = 0.01
# After a /cluster/resources answer the typed decode refused (a field it does not know),
# this many answers are decoded generically before it is tried again: a refusal costs up
# to a whole typed decode, and the cluster that sent the field will likely send it again.
STABLE_RETRY_AFTER = 60

_PRIVILEGE = re.compile(r"Permission check failed \((?P<path>[^,()]+), (?P<priv>[^()]+)\)")
# OpenSSL's words for "the first bytes were not a TLS record", e.g. an HTTP answer.
_NOT_TLS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG")
_TRANSPORT_KINDS: tuple[tuple[type[httpx.HTTPError], str], ...] = (
    (httpx.ConnectError, "cannot connect"),
    (httpx.ReadError, "connection broken while reading"),
    (httpx.WriteError, "connection broken while sending"),
    (httpx.RemoteProtocolError, "broken HTTP answer"),
    (httpx.TooManyRedirects, "too many redirects"),
)


@dataclass(frozen=True, slots=True)
class _Ticket:
    ticket: Secret
    csrf: Secret
    obtained_at: float


@dataclass(frozen=True, slots=True)
class _Answer:
    """An answer read whole (within the limits)."""

    status_code: int
    reason_phrase: str
    content: bytes


@dataclass(frozen=True, slots=True)
class _Where:
    endpoint: str
    method: str
    path: str  # with the query string, without the API prefix


class PveClient:
    """Talks to one PVE cluster. Use as `async with PveClient(cluster) as pve:`."""

    def __init__(
        self,
        cluster: ClusterConfig,
        *,
        logger: logging.Logger | None = None,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,  # for tests only
        min_interval_secs: float = DEFAULT_MIN_INTERVAL_SECS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._cluster = cluster
        self._log = logger or logging.getLogger(__name__)
        self._clock = clock
        self._sleep = sleep
        self._min_interval = min_interval_secs
        _check_credentials(cluster)
        self._endpoints = tuple(_normalize_endpoint(cluster.name, e) for e in cluster.endpoints)
        self._warn_about_weak_settings()
        self._active = 0
        self._next_slot = -math.inf
        self._ticket: _Ticket | None = None
        self._login_lock = asyncio.Lock()
        self._logins = 0  # login attempts ended
        self._login_failure: SourceError | None = None  # of the last one, if it failed
        self._stable_pause = 0  # answers to decode generically before trying typed again
        if transport is None:
            transport = build_transport(cluster.name, cluster.tls)
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(cluster.timeout_secs),
            trust_env=False,
            follow_redirects=False,
        )

    @property
    def active_endpoint(self) -> str:
        return self._endpoints[self._active]

    async def __aenter__(self) -> PveClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def version(self) -> dict[str, Any]:
        data, where = await self._request("GET", "/version")
        return self._object(data, where)

    async def resources(self, type: str | None = None) -> list[dict[str, Any]]:
        params: dict[str, str | int] | None = {"type": type} if type is not None else None
        data, where = await self._request("GET", "/cluster/resources", params=params)
        return self._rows(data, where, ("id", "type"))

    async def stable_resources(self) -> StableRows | list[dict[str, Any]]:
        """`resources()` of every type, as `StableRows` (pvewatch/watch/rows.py) when the
        typed decode can give the rows exactly, else the dicts of `resources()`."""
        data, _ = await self._request("GET", "/cluster/resources", decode=self._decode_stable)
        result: StableRows | list[dict[str, Any]] = data
        return result

    async def cluster_status(self) -> list[dict[str, Any]]:
        data, where = await self._request("GET", "/cluster/status")
        return self._rows(data, where, ("type",))

    async def tasks(self) -> list[dict[str, Any]]:
        data, where = await self._request("GET", "/cluster/tasks")
        return self._rows(data, where, ("upid",))

    async def task_status(self, node: str, upid: str) -> dict[str, Any]:
        data, where = await self._request("GET", f"{_task_path(node, upid)}/status")
        return self._object(data, where)

    async def task_log(self, node: str, upid: str, *, start: int = 0, limit: int = 50) -> list[str]:
        path = f"{_task_path(node, upid)}/log"
        data, where = await self._request("GET", path, params={"start": start, "limit": limit})
        return [row["t"] for row in self._rows(data, where, ("t",))]

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str | int] | None = None,
        data: dict[str, str] | None = None,
    ) -> Any:
        """Any other endpoint (`path` below /api2/json); returns the answer's `data`."""
        answer, _ = await self._request(method.upper(), path, params=params, data=data)
        return answer

    # -- auth ---------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str | int] | None = None,
        data: dict[str, str] | None = None,
        decode: Callable[[_Answer, _Where], Any] | None = None,
    ) -> tuple[Any, _Where]:
        """The answer's `data` (what `decode` makes of the answer, if given)."""
        logins_before = self._logins
        ticket = await self._current_ticket(logins_before)
        headers = self._auth_headers(method, ticket)
        response, where = await self._send(method, path, params, data, headers)
        if response.status_code == 401 and ticket is not None:
            self._log.info("%s: ticket refused (401), logging in again", where.endpoint)
            await self._drop_ticket(ticket)
            ticket = await self._current_ticket(logins_before)
            headers = self._auth_headers(method, ticket)
            response, where = await self._send(method, path, params, data, headers)
        return (decode or self._decode)(response, where), where

    def _auth_headers(self, method: str, ticket: _Ticket | None) -> dict[str, str]:
        if self._cluster.token is not None:
            return {"Authorization": f"PVEAPIToken={self._cluster.token.reveal()}"}
        assert ticket is not None
        headers = {"Cookie": f"PVEAuthCookie={ticket.ticket.reveal()}"}
        if method != "GET":
            headers["CSRFPreventionToken"] = ticket.csrf.reveal()
        return headers

    async def _current_ticket(self, logins_before: int) -> _Ticket | None:
        """The ticket to send, logging in or renewing first when it is missing or old. A
        login that failed after the request began (`logins_before` logins had ended then)
        fails it too: the requests of one poll cost one refused login, not one each (an
        auth log, or fail2ban, counts them)."""
        if self._cluster.token is not None:
            return None
        async with self._login_lock:
            if self._logins != logins_before and self._login_failure is not None:
                raise self._login_failure
            ticket = self._ticket
            age = math.inf if ticket is None else self._clock() - ticket.obtained_at
            if ticket is not None and age < RENEW_AFTER_SECS:
                return ticket
            try:
                if ticket is None or age >= RELOGIN_AFTER_SECS:
                    self._ticket = await self._login(self._password())
                else:
                    self._ticket = await self._renew(ticket)
            except SourceError as exc:
                self._login_failure = exc
                raise
            else:
                self._login_failure = None
                return self._ticket
            finally:
                self._logins += 1

    async def _drop_ticket(self, refused: _Ticket) -> None:
        async with self._login_lock:
            if self._ticket is refused:  # a concurrent request may have replaced it
                self._ticket = None

    async def _renew(self, ticket: _Ticket) -> _Ticket:
        try:
            return await self._login(ticket.ticket)
        except SourceAuthError as exc:
            self._log.info("ticket renewal refused (%s), logging in with the password", exc)
            return await self._login(self._password())

    async def _login(self, password: Secret) -> _Ticket:
        form = {"username": self._cluster.username or "", "password": password.reveal()}
        response, where = await self._send("POST", "/access/ticket", None, form, {})
        answer = self._object(self._decode(response, where), where)
        if answer.get("NeedTFA") in (1, True, "1"):
            raise self._fail(
                SourceAuthError, where, "the user needs a second factor (TFA); use an API token"
            )
        ticket, csrf = answer.get("ticket"), answer.get("CSRFPreventionToken")
        if not isinstance(ticket, str) or not isinstance(csrf, str) or not ticket or not csrf:
            raise self._fail(SourceBadResponse, where, "login answer has no ticket or CSRF token")
        return _Ticket(Secret(ticket), Secret(csrf), self._clock())

    def _password(self) -> Secret:
        assert self._cluster.password is not None  # _check_credentials made sure
        return self._cluster.password

    # -- transport: failover, spacing, error translation ---------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        params: dict[str, str | int] | None,
        data: dict[str, str] | None,
        headers: dict[str, str],
    ) -> tuple[_Answer, _Where]:
        shown = f"{path}?{httpx.QueryParams(params)}" if params else path
        failures: list[SourceUnreachable] = []
        count = len(self._endpoints)
        for step in range(count):
            index = (self._active + step) % count
            where = _Where(self._endpoints[index], method, shown)
            try:
                response = await self._send_once(where, path, params, data, headers)
            except SourceUnreachable as exc:
                failures.append(exc)
                if step + 1 < count:
                    self._log.warning("%s; trying the next endpoint", exc)
                continue
            if index != self._active:
                self._log.warning("cluster %s: now using %s", self._cluster.name, where.endpoint)
                self._active = index
            return response, where
        if count == 1:
            raise failures[0]
        details = "; ".join(str(f) for f in failures)
        raise SourceUnreachable(f"{method} {shown}: all {count} endpoints failed: {details}")

    async def _send_once(
        self,
        where: _Where,
        path: str,
        params: dict[str, str | int] | None,
        data: dict[str, str] | None,
        headers: dict[str, str],
    ) -> _Answer:
        await self._wait_turn()
        url = f"{where.endpoint}{API_PREFIX}{path}"
        timeout = self._cluster.timeout_secs
        try:
            async with asyncio.timeout(timeout):
                request = self._http.build_request(
                    where.method, url, params=params, data=data, headers=headers
                )
                response = await self._http.send(request, stream=True)
                try:
                    answer = _Answer(
                        response.status_code,
                        response.reason_phrase,
                        await self._read_body(response, where),
                    )
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            problem = f"timed out after {timeout:g} s (timeout_secs: the whole answer)"
            raise self._fail(SourceTimeout, where, problem) from None
        except httpx.DecodingError as exc:
            raise self._fail(SourceBadResponse, where, f"undecodable body: {exc}") from None
        except httpx.HTTPError as exc:
            raise self._fail(SourceUnreachable, where, _describe(exc)) from None
        if answer.status_code >= 500:
            reason = _reason(answer)
            raise self._fail(SourceUnreachable, where, f"{answer.status_code} {reason}")
        return answer

    async def _read_body(self, response: httpx.Response, where: _Where) -> bytes:
        """The decoded body, up to max_response_bytes: beyond it, not one more byte. A
        gzip or deflate body is inflated here (pvewatch/pve/inflate.py), any other by
        httpx."""
        limit = self._cluster.max_response_bytes
        declared = response.headers.get("Content-Length", "")
        if (
            declared.isdigit()
            and int(declared) > limit
            and "Content-Encoding" not in response.headers
        ):
            raise self._too_large(where, f"it announces {int(declared)} bytes")
        chunks: list[bytes] = []
        size = 0
        inflater = None
        # An answer built from bytes (a mock transport's) comes read, httpx has decoded it.
        if not response.is_stream_consumed:
            inflater = Inflater.for_encoding(response.headers.get("Content-Encoding", ""))
        stream = response.aiter_bytes() if inflater is None else response.aiter_raw()
        try:
            async for chunk in stream:
                if inflater is not None:
                    # One byte past the limit at most, however well the chunk compresses.
                    chunk = inflater.inflate(chunk, limit + 1 - size)
                size += len(chunk)
                if size > limit:
                    raise self._too_large(where, f"more than {limit} bytes came")
                chunks.append(chunk)
            if inflater is not None:
                inflater.finish()
        except InflateError as exc:
            raise self._fail(SourceBadResponse, where, f"undecodable body: {exc}") from None
        return b"".join(chunks)

    def _too_large(self, where: _Where, detail: str) -> SourceError:
        limit = self._cluster.max_response_bytes
        problem = f"answer over max_response_bytes ({limit}): {detail}"
        return self._fail(SourceBadResponse, where, problem)

    async def _wait_turn(self) -> None:
        """Keep at least `min_interval_secs` between two requests to this cluster."""
        now = self._clock()
        start = max(now, self._next_slot)
        self._next_slot = start + self._min_interval
        if start > now:
            await self._sleep(start - now)

    # -- decoding ------------------------------------------------------------------------

    def _decode(self, response: _Answer, where: _Where) -> Any:
        status = response.status_code
        if status == 401:
            raise self._fail(SourceAuthError, where, f"401 {_reason(response)}")
        if status == 403:
            raise self._fail(SourceAuthError, where, _forbidden(_reason(response)))
        if status != 200:
            raise self._fail(SourceBadResponse, where, f"{status} {_reason(response)}")
        try:
            # msgspec decodes a 10,000-guest answer in about half the time of json.loads
            # (bench/RESULTS.md); its errors are ValueErrors.
            body = msgspec.json.decode(response.content)
        except (ValueError, RecursionError):
            raise self._fail(SourceBadResponse, where, "body is not JSON") from None
        if not isinstance(body, dict) or "data" not in body:
            raise self._fail(SourceBadResponse, where, "answer has no `data`")
        return body["data"]

    def _decode_stable(self, response: _Answer, where: _Where) -> Any:
        if response.status_code == 200 and self._stable_pause == 0:
            try:
                return decode_stable(response.content)
            except msgspec.ValidationError as e:
                self._stable_pause = STABLE_RETRY_AFTER
                self._log.debug("%s: resources decoded generically: %s", where.endpoint, e)
            except (ValueError, RecursionError):
                pass  # not JSON: the generic decode says so
        elif response.status_code == 200:
            self._stable_pause -= 1
        return self._rows(self._decode(response, where), where, ("id", "type"))

    def _object(self, data: Any, where: _Where) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self._fail(SourceBadResponse, where, f"`data` is {_kind(data)}, not an object")
        return data

    def _rows(self, data: Any, where: _Where, keys: tuple[str, ...]) -> list[dict[str, Any]]:
        if not isinstance(data, list):
            raise self._fail(SourceBadResponse, where, f"`data` is {_kind(data)}, not a list")
        for number, row in enumerate(data):
            if not isinstance(row, dict):
                raise self._fail(SourceBadResponse, where, f"item {number} is {_kind(row)}")
            for key in keys:
                if not isinstance(row.get(key), str):
                    problem = f"item {number} has no string `{key}`"
                    raise self._fail(SourceBadResponse, where, problem)
        return data

    def _fail(self, cls: type[SourceError], where: _Where, message: str) -> SourceError:
        for secret in self._secrets():
            message = message.replace(secret, "***")
        return cls(f"{where.method} {API_PREFIX}{where.path}: {message}", endpoint=where.endpoint)

    def _secrets(self) -> list[str]:
        """Every secret value this client holds, longest first (a token before its part)."""
        held = [self._cluster.token, self._cluster.password]
        if self._ticket is not None:
            held += [self._ticket.ticket, self._ticket.csrf]
        values = [s.reveal() for s in held if s]
        if self._cluster.token:
            values.append(self._cluster.token.reveal().rsplit("=", 1)[-1])
        return sorted((v for v in values if v), key=len, reverse=True)

    def _warn_about_weak_settings(self) -> None:
        tls = self._cluster.tls
        if not tls.verify and not tls.fingerprints:
            self._log.warning(
                "cluster %s: TLS verification is off (tls.verify: false); the server's"
                " identity is not checked, pin its fingerprint instead",
                self._cluster.name,
            )
        for endpoint in self._endpoints:
            if endpoint.startswith("http://"):
                self._log.warning(
                    "cluster %s: %s is plain HTTP; credentials travel unencrypted",
                    self._cluster.name,
                    endpoint,
                )


def _check_credentials(cluster: ClusterConfig) -> None:
    where = f"cluster {cluster.name!r}"
    if cluster.token is not None:
        # h11 would echo a malformed header value (the token) in its error.
        if not TOKEN.fullmatch(cluster.token.reveal()):
            raise ConfigError([f"{where}: token must look like USER@REALM!TOKENID=SECRET"])
    elif not cluster.username or not cluster.password:
        raise ConfigError([f"{where}: needs a token, or a username and a password"])
    if not cluster.endpoints:
        raise ConfigError([f"{where}: needs at least one endpoint"])


def _normalize_endpoint(cluster: str, text: str) -> str:
    """The endpoint as the config writes it (pvewatch.config.values.endpoint_url); a bare
    "pve1" / "pve1:8006", as a ClusterConfig built in code may have it, is https."""
    raw = text.strip()
    url, problems = endpoint_url(raw if "://" in raw else f"https://{raw}")
    if url is None or problems:
        reason = "; ".join(problems) or "not an http(s) URL"
        raise ConfigError([f"cluster {cluster!r}: endpoint {text!r}: {reason}"])
    return url


def _task_path(node: str, upid: str) -> str:
    return f"/nodes/{quote(node, safe='')}/tasks/{quote(upid, safe='')}"


def _reason(response: _Answer) -> str:
    """PVE puts its error text in the reason phrase; a proxy may replace it with the
    standard one, and PVE >= 8.3 repeats it as the JSON `message`."""
    phrase = response.reason_phrase.strip()
    if phrase and phrase != httpx.codes.get_reason_phrase(response.status_code):
        return phrase
    try:
        body = msgspec.json.decode(response.content)
    except (ValueError, RecursionError):
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    if isinstance(message, str) and message.strip():
        return message.strip()
    return phrase or "(no reason given)"


def _forbidden(reason: str) -> str:
    match = _PRIVILEGE.search(reason)
    if match is None:
        return f"403 {reason}"
    return f"403 {reason}: missing privilege {match['priv']} on {match['path']}"


def _describe(exc: httpx.HTTPError) -> str:
    detail = str(exc) or type(exc).__name__
    if any(code in detail for code in _NOT_TLS):
        detail = f"the answer is not TLS (plain HTTP on an https:// endpoint?): {detail}"
    for cls, kind in _TRANSPORT_KINDS:
        if isinstance(exc, cls):
            return f"{kind}: {detail}"
    return f"transport error: {detail}"


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__
