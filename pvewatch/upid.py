"""PVE task ids (UPIDs): `UPID:<node>:<pid>:<pstart>:<starttime>:<type>:<id>:<user>:`.

The grammar follows pve-common's UPID.pm: hex in either case, 8 hex digits for pid and
starttime, 8 or 9 for pstart (9 after ~497 days of uptime), a possibly empty id, and a
trailing colon that is part of the UPID. A token-started task carries `user@realm!token`;
like /cluster/tasks, `Upid` keeps the user and the token name apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UPID = re.compile(
    r"UPID:(?P<node>[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?)"
    r":(?P<pid>[0-9A-Fa-f]{8}):(?P<pstart>[0-9A-Fa-f]{8,9}):(?P<starttime>[0-9A-Fa-f]{8})"
    r":(?P<type>[^:\s]+):(?P<id>[^:\s]*):(?P<user>[^:\s]+):"
)
_MAX_U32 = 0xFFFFFFFF
_MAX_PSTART = 0xFFFFFFFFF


@dataclass(frozen=True, slots=True)
class Upid:
    node: str
    pid: int
    pstart: int
    starttime: int  # Unix epoch seconds
    type: str
    id: str  # usually the vmid; "" for node-wide tasks
    user: str  # "user@realm", without the token name
    tokenid: str | None = None

    def __str__(self) -> str:
        return format_upid(self)


def parse_upid(text: str) -> Upid:
    """Parse a UPID; ValueError says what is wrong (the UPID is not a secret)."""
    match = _UPID.fullmatch(text)
    if match is None:
        raise ValueError(f"malformed UPID {text!r}")
    user, tokenid = _split_user(match["user"], text)
    return Upid(
        node=match["node"],
        pid=int(match["pid"], 16),
        pstart=int(match["pstart"], 16),
        starttime=int(match["starttime"], 16),
        type=match["type"],
        id=match["id"],
        user=user,
        tokenid=tokenid,
    )


def format_upid(upid: Upid) -> str:
    """The canonical (upper-case hex) text of `upid`; ValueError if it cannot be one."""
    _check_range("pid", upid.pid, _MAX_U32)
    _check_range("pstart", upid.pstart, _MAX_PSTART)
    _check_range("starttime", upid.starttime, _MAX_U32)
    user = upid.user if upid.tokenid is None else f"{upid.user}!{upid.tokenid}"
    text = (
        f"UPID:{upid.node}:{upid.pid:08X}:{upid.pstart:08X}:{upid.starttime:08X}"
        f":{upid.type}:{upid.id}:{user}:"
    )
    if parse_upid(text) != upid:
        # A field held a ':' or whitespace (or a bad node name) and would not read back.
        raise ValueError(f"cannot format UPID from {upid!r}")
    return text


def _split_user(user: str, text: str) -> tuple[str, str | None]:
    if "!" not in user:
        return user, None
    name, tokenid = user.split("!", 1)
    if not name or not tokenid or "!" in tokenid:
        raise ValueError(f"malformed user in UPID {text!r}")
    return name, tokenid


def _check_range(field: str, value: int, maximum: int) -> None:
    if not 0 <= value <= maximum:
        raise ValueError(f"UPID {field} {value} out of range 0..{maximum}")
