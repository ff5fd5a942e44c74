"""UPID parsing and formatting (FACTS §3.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvewatch.upid import Upid, format_upid, parse_upid

PARSED = [
    (
        "UPID:pve1:00019C2E:0B3B125C:6A86C553:qmstart:100:root@pam:",
        Upid("pve1", 105518, 188420700, 1787217235, "qmstart", "100", "root@pam"),
    ),
    (
        "UPID:pve:000003CC:000005C9:5DD801DA:startall::root@pam:",
        Upid("pve", 972, 1481, 1574437338, "startall", "", "root@pam"),
    ),
    (
        "UPID:pve3:0000F1A0:0B27A104:6A86B402:qmigrate:103:admin@pam!automation:",
        Upid("pve3", 61856, 187146500, 1787212802, "qmigrate", "103", "admin@pam", "automation"),
    ),
    (  # lower-case hex and a 9-digit pstart (uptime past ~497 days)
        "UPID:node-a1:0001a2b3:1000000ff:6a86c553:vzdump:200:backup@pbs:",
        Upid("node-a1", 0x1A2B3, 0x1000000FF, 0x6A86C553, "vzdump", "200", "backup@pbs"),
    ),
]


@pytest.mark.parametrize(("text", "upid"), PARSED)
def test_parse(text: str, upid: Upid) -> None:
    assert parse_upid(text) == upid


@pytest.mark.parametrize(("text", "upid"), PARSED[:3])
def test_format_gives_back_the_pve_text(text: str, upid: Upid) -> None:
    assert format_upid(upid) == text
    assert str(upid) == text


def test_format_writes_upper_case_hex_and_keeps_9_digit_pstart() -> None:
    assert (
        format_upid(PARSED[3][1])
        == "UPID:node-a1:0001A2B3:1000000FF:6A86C553:vzdump:200:backup@pbs:"
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "UPID:pve1:00019C2E:0B3B125C:6A86C553:qmstart:100:root@pam",  # no trailing colon
        "UPID:pve1:19C2E:0B3B125C:6A86C553:qmstart:100:root@pam:",  # pid not 8 digits
        "UPID:pve1:00019C2E:0B3B125:6A86C553:qmstart:100:root@pam:",  # pstart 7 digits
        "UPID:pve1:00019C2E:0B3B125C00:6A86C553:qmstart:100:root@pam:",  # pstart 10
        "UPID:pve1:00019C2E:0B3B125C:6A86C55:qmstart:100:root@pam:",  # starttime 7
        "UPID:pve1:00019C2G:0B3B125C:6A86C553:qmstart:100:root@pam:",  # not hex
        "UPID:pve1:00019C2E:0B3B125C:6A86C553::100:root@pam:",  # empty type
        "UPID:pve1:00019C2E:0B3B125C:6A86C553:qmstart:100::",  # empty user
        "UPID:pve1:00019C2E:0B3B125C:6A86C553:qm start:100:root@pam:",  # space
        "UPID:-pve1:00019C2E:0B3B125C:6A86C553:qmstart:100:root@pam:",  # bad node
        "UPID:pve1:00019C2E:0B3B125C:6A86C553:qmstart:100:root@pam:extra:",
        "upid:pve1:00019C2E:0B3B125C:6A86C553:qmstart:100:root@pam:",
        "UPID:pve1:00019C2E:0B3B125C:6A86C553:qmstart:100:root@pam!:",  # empty token
        " UPID:pve1:00019C2E:0B3B125C:6A86C553:qmstart:100:root@pam:",
    ],
)
def test_malformed_is_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="UPID"):
        parse_upid(text)


@pytest.mark.parametrize(
    "upid",
    [
        Upid("pve1", -1, 0, 0, "qmstart", "100", "root@pam"),
        Upid("pve1", 0, 0, 2**32, "qmstart", "100", "root@pam"),
        Upid("pve1", 0, 2**36, 0, "qmstart", "100", "root@pam"),
        Upid("pve1", 0, 0, 0, "qm:start", "100", "root@pam"),
        Upid("pve 1", 0, 0, 0, "qmstart", "100", "root@pam"),
        Upid("pve1", 0, 0, 0, "qmstart", "100", "root@pam", ""),
    ],
)
def test_unformattable_is_value_error(upid: Upid) -> None:
    with pytest.raises(ValueError, match="UPID"):
        format_upid(upid)


_NODE = st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9\-]{0,20}[a-zA-Z0-9])?", fullmatch=True)
_WORD = st.from_regex(r"[a-zA-Z0-9_.\-]{1,20}", fullmatch=True)
_UPIDS = st.builds(
    Upid,
    node=_NODE,
    pid=st.integers(0, 2**32 - 1),
    pstart=st.integers(0, 2**36 - 1),
    starttime=st.integers(0, 2**32 - 1),
    type=_WORD,
    id=st.one_of(st.just(""), _WORD),
    user=st.builds("{}@{}".format, _WORD, _WORD),
    tokenid=st.one_of(st.none(), _WORD),
)


@given(_UPIDS)
def test_format_then_parse_round_trips(upid: Upid) -> None:
    text = format_upid(upid)
    assert parse_upid(text) == upid
    assert text.startswith("UPID:")
    assert text.endswith(":")
    assert len(text.split(":")) == 9
