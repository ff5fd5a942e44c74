"""The corosync QDevice: `/cluster/config/qdevice` (pve-cluster src/PVE/API2/ClusterConfig.pm
`qdevice`; corosync-qdevice's `status verbose`; FACTS-health.md §4).

None by default: the answer is `{}`, as when the qdevice socket is absent. `PUT
/_sim/qdevice` sets one up: the keys PVE keeps (`Algorithm`, `Last poll call`, `Model`,
`QNetd host`, `State`, `Tie-breaker`; never `Echo reply`). A connected QDevice polls every
10 s and casts its vote; any other state keeps the time of its last poll.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pvewatch.simulator.health import fields

STATES = ("Connected", "Connecting", "Connect failed", "Disconnected")
ALGORITHMS = ("Fifty-Fifty split", "LMS", "2 Node LMS", "Test")


@dataclass(slots=True)
class QDevice:
    state: str
    host: str
    algorithm: str
    tie_breaker: str
    last_poll: int | None  # None: "Never"


class QDeviceState:
    def __init__(self) -> None:
        self.device: QDevice | None = None

    def put(self, body: Any, now: float) -> None:
        where = "/_sim/qdevice"
        spec = fields.body_object(
            body, where, ("state", "host", "algorithm", "tie_breaker", "last_poll")
        )
        current = self.device or QDevice(
            "Connected", "192.168.1.5", "Fifty-Fifty split", "Node with lowest node ID", None
        )
        state = fields.choice(spec.get("state", current.state), where, "state", STATES)
        host = fields.text(spec.get("host", current.host), where, "host")
        algorithm = spec.get("algorithm", current.algorithm)
        algorithm = fields.choice(algorithm, where, "algorithm", ALGORITHMS)
        tie = fields.text(spec.get("tie_breaker", current.tie_breaker), where, "tie_breaker")
        last_poll = spec.get("last_poll", int(now) if "state" in spec else current.last_poll)
        if last_poll is not None:
            last_poll = fields.epoch(last_poll, where, "last_poll")
        self.device = QDevice(state, host, algorithm, tie, last_poll)

    def reset(self) -> None:
        self.device = None

    def status(self, now: float) -> dict[str, str]:
        device = self.device
        if device is None:
            return {}
        connected = device.state == "Connected"
        polled = int(now // 10 * 10) if connected else device.last_poll
        last = (
            "Never" if polled is None else time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(polled))
        )
        return {
            "Algorithm": device.algorithm,
            "Last poll call": f"{last} (cast vote)" if connected and polled else last,
            "Model": "Net",
            "QNetd host": f"{device.host}:5403",
            "State": device.state,
            "Tie-breaker": device.tie_breaker,
        }
