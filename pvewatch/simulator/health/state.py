"""Everything the health endpoints show, on the simulated cluster (`cluster.health`), built
from its layout and changed only through `/_sim/` and churn, under the cluster's lock.

Notifications the simulated PVE decides to send (a failed backup, a replication failure,
a fencing) wait in `outbox` until the server hands them to the notifier: this stays pure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pvewatch.simulator.health.acl import Acl
from pvewatch.simulator.health.backups import BackupBook
from pvewatch.simulator.health.ceph import CephState
from pvewatch.simulator.health.certificates import CertificateStore
from pvewatch.simulator.health.disks import DiskStore
from pvewatch.simulator.health.ha import HaState
from pvewatch.simulator.health.notices import Notice
from pvewatch.simulator.health.overrides import PathOverrides
from pvewatch.simulator.health.qdevice import QDeviceState
from pvewatch.simulator.health.replication import ReplicationBook

if TYPE_CHECKING:
    from pvewatch.simulator.cluster import SimCluster

INSTALLED_DAYS_AGO = 400


class HealthState:
    def __init__(self, cluster: SimCluster, now: float) -> None:
        self.acl = Acl()
        self.overrides = PathOverrides()
        self.ha = HaState(cluster.guests)
        self.ceph = CephState()
        self.replication = ReplicationBook()
        self.qdevice = QDeviceState()
        self.certificates = CertificateStore(now - INSTALLED_DAYS_AGO * 86_400)
        self.disks = DiskStore()
        self.backups = BackupBook(cluster, now)
        self.outbox: list[Notice] = []

    def take_outbox(self) -> list[Notice]:
        taken, self.outbox = self.outbox, []
        return taken
