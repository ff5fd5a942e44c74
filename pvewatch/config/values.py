"""One rule per kind of value, for the config and for the components that check a value
built in code (a ClusterConfig in a test, a RetryPolicy): the PVE client and delivery
apply these, never a copy. Pure.

- `USER`, `TOKEN`: PVE user and API token ids, as pve-access-control defines them;
- `endpoint_url`: a cluster endpoint → its canonical URL, or what is wrong with it;
- `RETRY_*`, `retry_problems`: the ranges of a sink's `retry:` keys;
- `out_of_bounds`, `out_of_range`: the messages of a number outside its range.
"""

from __future__ import annotations

import math
import re
from urllib.parse import urlsplit

# As PVE's userid (pve-access-control); the secret goes into a header, so ASCII only.
USER = re.compile(r"[^\s:/]+@[A-Za-z][A-Za-z0-9._-]*")
TOKEN = re.compile(USER.pattern + r"![A-Za-z][A-Za-z0-9._-]*=[\x21-\x7e]+")

API_PREFIX = "/api2/json"
PVE_PORT = 8006
_HOST = re.compile(r"[a-z0-9._:%-]+")

# (lowest, highest, whether the lowest itself is allowed)
Bounds = tuple[float, float, bool]
DAY_SECS = 86400.0
RETRY_INITIAL_SECS: Bounds = (0, DAY_SECS, False)
RETRY_MAX_SECS: Bounds = (0, DAY_SECS, False)
RETRY_MAX_AGE_SECS: Bounds = (0, 365 * DAY_SECS, False)
RETRY_MAX_ATTEMPTS = (1, 1000)


def endpoint_url(text: str) -> tuple[str | None, list[str]]:
    """ "https://host[:port][/prefix]" → the canonical URL (lower-case host, port 8006
    when https has none, no /api2/json), and the problems with it; None when it is not an
    http(s) URL with a host at all."""
    bad = "expected an http(s) URL with a host, e.g. https://pve1.example:8006"
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None, [bad]
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not _HOST.fullmatch(host):
        return None, [bad]
    problems = []
    if parts.username is not None or parts.password is not None:
        problems.append("must not contain credentials; use token or username+password")
    if parts.query or parts.fragment:
        problems.append("must not contain a query or fragment")
    if port == 0:
        problems.append("port 0 is not a port a server listens on")
    prefix = parts.path.rstrip("/").removesuffix(API_PREFIX).rstrip("/")
    if port is None and parts.scheme == "https":
        port = PVE_PORT
    netloc = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{netloc}{f':{port}' if port is not None else ''}{prefix}", problems


def out_of_bounds(value: float, bounds: Bounds) -> str | None:
    """What is wrong with a number outside `bounds`; None when it is inside."""
    low, high, low_ok = bounds
    if not math.isfinite(value) or value > high or value < low or (value == low and not low_ok):
        relation = ">=" if low_ok else ">"
        return f"expected a number {relation} {low:g} and <= {high:g}, got {value:g}"
    return None


def out_of_range(value: int, low: int, high: int) -> str | None:
    """What is wrong with an integer outside [low, high]; None when it is inside."""
    if not low <= value <= high:
        return f"expected an integer from {low} to {high}, got {value}"
    return None


def below_initial(initial_secs: float, max_secs: float) -> str | None:
    """The one rule between two retry keys: backoff never starts above its ceiling."""
    return f"must be >= initial_secs ({initial_secs:g})" if max_secs < initial_secs else None


def retry_problems(
    initial_secs: float, max_secs: float, max_attempts: int | None, max_age_secs: float | None
) -> list[str]:
    """`key: what is wrong` for each value of a `retry:` outside its range (None: no limit)."""
    found = {
        "initial_secs": out_of_bounds(initial_secs, RETRY_INITIAL_SECS),
        "max_secs": out_of_bounds(max_secs, RETRY_MAX_SECS),
        "max_attempts": None,
        "max_age_secs": None,
    }
    found["max_secs"] = found["max_secs"] or below_initial(initial_secs, max_secs)
    if max_attempts is not None:
        found["max_attempts"] = out_of_range(max_attempts, *RETRY_MAX_ATTEMPTS)
    if max_age_secs is not None:
        found["max_age_secs"] = out_of_bounds(max_age_secs, RETRY_MAX_AGE_SECS)
    return [f"{key}: {problem}" for key, problem in found.items() if problem]
