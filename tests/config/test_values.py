"""One rule per value: the config and the components built in code (the PVE client,
RetryPolicy) accept and refuse the same tokens, endpoints and retry settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvewatch.config.delivery import delivery_options
from pvewatch.config.reading import Ctx
from pvewatch.config.types import ClusterConfig
from pvewatch.config.values import endpoint_url
from pvewatch.deliver.policy import RetryPolicy
from pvewatch.errors import ConfigError
from pvewatch.pve.client import PveClient
from pvewatch.secret import Secret

from .support import load, with_cluster


def token_problems(tmp_path: Path, token: str) -> list[str]:
    try:
        load(tmp_path, with_cluster(token=token))
    except ConfigError as e:
        return e.problems
    return []


@pytest.mark.parametrize(
    ("token", "valid"),
    [
        ("pvewatch@pve!monitor=8a1e0c2d", True),
        ("root@pam!ci=x", True),
        ("a:b@pve!t=secret", False),  # ":" is not in a PVE user name
        ("a/b@pve!t=secret", False),
        ("pvewatch@pve!monitor=se cret", False),  # the secret goes into a header
        ("pvewatch@pve=secret", False),
        ("pvewatch!monitor=secret", False),
        ("pvewatch@1pve!monitor=secret", False),
    ],
)
async def test_the_config_and_the_client_agree_on_tokens(
    tmp_path: Path, token: str, valid: bool
) -> None:
    found = token_problems(tmp_path, token)
    assert (found == []) is valid, found
    cluster = ClusterConfig("lab", ("https://pve1:8006",), token=Secret(token))
    if valid:
        await PveClient(cluster).aclose()
    else:
        with pytest.raises(ConfigError, match="token must look like"):
            PveClient(cluster)


@pytest.mark.parametrize(
    ("written", "url", "problems"),
    [
        ("https://pve1.example", "https://pve1.example:8006", []),
        ("HTTPS://PVE1.Example:443/api2/json/", "https://pve1.example:443", []),
        ("http://[fd00::11]:8006/pve/", "http://[fd00::11]:8006/pve", []),
        ("https://u:p@pve1", "https://pve1:8006", ["must not contain credentials"]),
        ("https://pve1?x=1", "https://pve1:8006", ["must not contain a query or fragment"]),
        ("https://pve1:0", "https://pve1:0", ["port 0 is not a port"]),
        ("ftp://pve1", None, ["expected an http(s) URL with a host"]),
        ("https://pve1:99999", None, ["expected an http(s) URL with a host"]),
    ],
)
async def test_the_config_and_the_client_agree_on_endpoints(
    tmp_path: Path, written: str, url: str | None, problems: list[str]
) -> None:
    found_url, found = endpoint_url(written)
    assert found_url == url
    assert [p[: len(want)] for p, want in zip(found, problems, strict=True)] == problems
    cluster = ClusterConfig("lab", (written,), token=Secret("a@pve!t=s"))
    if url is not None and not problems:
        async with PveClient(cluster) as client:
            assert client.active_endpoint == url
    else:
        with pytest.raises(ConfigError, match="endpoint"):
            PveClient(cluster)


SECS = st.one_of(st.floats(-10, 400 * 86400, allow_nan=False), st.sampled_from([0, 86400, 1e-9]))


@given(
    initial=SECS,
    most=SECS,
    attempts=st.one_of(st.none(), st.integers(-5, 1200)),
    age=SECS,
)
def test_the_config_and_retry_policy_accept_the_same_retry_settings(
    initial: float, most: float, attempts: int | None, age: float
) -> None:
    retry: dict[str, object] = {"initial_secs": initial, "max_secs": most, "max_age_secs": age}
    if attempts is not None:
        retry["max_attempts"] = attempts
    ctx = Ctx(Path("."), None)
    delivery_options(ctx, "sinks.hook", {"retry": retry})
    try:
        RetryPolicy(initial_secs=initial, max_secs=most, max_attempts=attempts, max_age_secs=age)
    except ValueError:
        accepted = False
    else:
        accepted = True
    assert accepted is (ctx.problems == []), ctx.problems
