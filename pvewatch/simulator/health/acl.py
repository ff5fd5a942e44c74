"""Privileges of the simulated API's users and tokens: pve-access-control's ACL model, cut
down to what the health endpoints check (src/PVE/AccessControl.pm `roles`,
src/PVE/RPCEnvironment.pm `check`/`check_any`, pve-common `raise_perm_exc`).

An identity without an ACL holds every privilege, as the simulator always did, so a test
that does not care about permissions never meets a 403. `PUT /_sim/acl/{userid}` gives one
user or token an exact ACL, `{"/": ["Sys.Audit"], "/vms/100": ["VM.Audit"]}`: every entry
propagates down the tree and, as in PVE, the deepest path that has an entry decides (an
entry on `/vms/100` replaces what `/` granted there). `root@pam` can do anything.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pvewatch.simulator.edits import ControlError

_PRIVILEGE = re.compile(r"^[A-Z][A-Za-z]*(\.[A-Za-z]+)+$")
_USERID = re.compile(r"^[^\s:/@!]+@[A-Za-z][A-Za-z0-9.\-_]+(![A-Za-z][A-Za-z0-9.\-_]+)?$")


def normalize(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    return "/" + "/".join(parts)


class Acl:
    def __init__(self) -> None:
        self._by_user: dict[str, dict[str, frozenset[str]]] = {}

    def set(self, userid: str, body: Any) -> None:
        where = f"/_sim/acl/{userid}"
        if not _USERID.match(userid):
            raise ControlError(f"{where}: expected USER@REALM or USER@REALM!TOKEN")
        if not isinstance(body, dict):
            raise ControlError(f'{where}: expected {{"<path>": ["<privilege>", ...], ...}}')
        entries: dict[str, frozenset[str]] = {}
        for path, privileges in body.items():
            if not path.startswith("/") or not isinstance(privileges, list):
                raise ControlError(f"{where}: {path!r}: expected a path (/...) and a list")
            bad = [p for p in privileges if not isinstance(p, str) or not _PRIVILEGE.match(p)]
            if bad:
                raise ControlError(f"{where}: not privilege names: {bad!r} (e.g. Sys.Audit)")
            entries[normalize(path)] = frozenset(privileges)
        self._by_user[userid] = entries

    def clear(self, userid: str | None = None) -> None:
        if userid is None:
            self._by_user.clear()
        else:
            self._by_user.pop(userid, None)

    def snapshot(self) -> dict[str, dict[str, list[str]]]:
        return {
            user: {path: sorted(privs) for path, privs in sorted(entries.items())}
            for user, entries in sorted(self._by_user.items())
        }

    def has(self, userid: str, path: str, privilege: str) -> bool:
        entries = self._by_user.get(userid)
        if entries is None or userid == "root@pam":
            return True
        granted: frozenset[str] = frozenset()
        parts = [p for p in path.split("/") if p]
        for depth in range(len(parts) + 1):
            granted = entries.get("/" + "/".join(parts[:depth]), granted)
        return privilege in granted

    def require(self, userid: str, path: str, privileges: Sequence[str]) -> str | None:
        """`check`: every privilege; the 403 message names the first one missing."""
        path = normalize(path)
        for privilege in privileges:
            if not self.has(userid, path, privilege):
                return f"Permission check failed ({path}, {privilege})\n"
        return None

    def require_any(self, userid: str, path: str, privileges: Sequence[str]) -> str | None:
        """`check_any` (a check with `any => 1`): one of them."""
        path = normalize(path)
        if any(self.has(userid, path, p) for p in privileges):
            return None
        return f"Permission check failed ({path}, {'|'.join(privileges)})\n"


# What an `['or', ...]` check says when every alternative fails: no detail at all.
OR_FAILED = "Permission check failed\n"
