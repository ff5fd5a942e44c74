"""The PVE API: `PveClient` (auth, TLS, failover, typed errors) and task ids (`Upid`).

This package is the only code that knows PVE URLs and imports httpx for it.
"""

from __future__ import annotations

from pvewatch.pve.client import PveClient
from pvewatch.pve.upid import Upid, format_upid, parse_upid

__all__ = ["PveClient", "Upid", "format_upid", "parse_upid"]
