"""A simulated Proxmox VE cluster behind a faithful copy of its REST API.

`cluster.py` is the simulated cluster (pure: state, the offline timeline, tasks, churn);
`server.py` serves it over HTTP(S) with the real envelope, auth and error shapes, plus the
`/_sim/` control API.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SimOptions:
    listen: str = "127.0.0.1:8006"
    nodes: int = 3
    guests: int = 20
    storages_per_node: int = 2
    seed: int = 1
    pve_version: int = 9
    tokens: tuple[str, ...] = ()  # "USER@REALM!ID=SECRET"
    user: str | None = None  # "root@pam"
    password: str | None = None
    churn_per_min: float = 0.0
    tls: bool = True
    # Seconds an offline node's guests keep their last values before turning `unknown`
    # (300 on real PVE; shorten it for tests).
    offline_expiry_secs: float = 300.0
    # Delay before a 401 answer (about 3 s on real PVE; 0 keeps tests fast).
    auth_fail_delay_secs: float = 0.0
    # PVE's webhook notification target: where the simulated PVE sends its notifications
    # (pvewatch's `/notify/{name}`) and the bearer token it sends (health/notifier.py).
    notify_url: str | None = None
    notify_token: str | None = field(default=None, repr=False)
