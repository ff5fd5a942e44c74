"""Disks and ZFS: `/nodes/{node}/disks/list` and `/nodes/{node}/disks/zfs` (pve-storage
src/PVE/API2/Disks.pm, src/PVE/Diskmanage.pm `get_disks`, src/PVE/API2/Disks/ZFS.pm;
FACTS-health.md §6).

Every node has an NVMe used by LVM and two SSDs partitioned as a ZFS install does them
(BIOS boot, EFI, ZFS), mirrored in the pool `rpool`; all healthy. `PUT
/_sim/disks/{node}/{dev}` changes or adds a disk (`health`: `PASSED`, `FAILED!` as ATA
disks say it, `OK` for SAS, `UNKNOWN`...), `PUT /_sim/zfs/{node}/{pool}` a pool's
`health`, `PUT /_sim/zfs/{node}` `{"installed": 0}` makes the list answer 500
`zfsutils-linux not installed`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from pvewatch.simulator.edits import ControlError
from pvewatch.simulator.health import fields

POOL_HEALTH = ("ONLINE", "DEGRADED", "FAULTED", "OFFLINE", "UNAVAIL", "REMOVED", "SUSPENDED")
DISK_TYPES = ("hdd", "ssd", "nvme", "usb", "unknown")
ZFS_MISSING = "zfsutils-linux not installed\n"
_DISK_KEYS = ("health", "wearout", "type", "model", "serial", "vendor", "size", "rpm", "used")


@dataclass(slots=True)
class Partition:
    number: int
    size: int
    used: str | None
    mounted: bool = False


@dataclass(slots=True)
class Disk:
    type: str
    model: str
    serial: str
    vendor: str
    wwn: str
    size: int
    rpm: int
    health: str = "PASSED"
    wearout: int | str = "N/A"
    gpt: int = 1
    used: str | None = None
    partitions: list[Partition] = field(default_factory=list)
    by_id: str | None = None

    def rows(self, dev: str, include_partitions: bool, skipsmart: bool) -> list[dict[str, Any]]:
        devpath = f"/dev/{dev}"
        row: dict[str, Any] = {"devpath": devpath, "type": self.type, "model": self.model}
        row.update(serial=self.serial, vendor=self.vendor, wwn=self.wwn, size=self.size)
        row.update(gpt=self.gpt, rpm=self.rpm)
        row["health"] = "UNKNOWN" if skipsmart else self.health
        row["wearout"] = "N/A" if skipsmart else self.wearout
        used = self.used
        if include_partitions and self.partitions:
            used = "partitions"
        for part in self.partitions:
            used = used or part.used
        used = used or ("partitions" if self.partitions else None)
        if used:
            row["used"] = used
        row.update({"osdid": -1, "osdid-list": None})
        if self.by_id:
            row["by_id_link"] = f"/dev/disk/by-id/{self.by_id}"
        rows = [row]
        if include_partitions:
            rows += [self._partition_row(dev, p) for p in self.partitions]
        return rows

    def _partition_row(self, dev: str, part: Partition) -> dict[str, Any]:
        sep = "p" if dev[-1].isdigit() else ""
        row: dict[str, Any] = {"devpath": f"/dev/{dev}{sep}{part.number}"}
        row.update(parent=f"/dev/{dev}", type="partition", size=part.size, gpt=self.gpt)
        row.update({"used": part.used, "osdid": -1, "osdid-list": None})
        if part.mounted:
            row["mounted"] = 1
        return row


@dataclass(slots=True)
class Pool:
    size: int
    alloc: int
    frag: int = 3
    dedup: float = 1
    health: str = "ONLINE"

    def row(self, name: str) -> dict[str, Any]:
        return {"name": name, "size": self.size, "alloc": self.alloc} | {
            "free": self.size - self.alloc,
            "frag": self.frag,
            "dedup": self.dedup,
            "health": self.health,
        }


@dataclass(slots=True)
class NodeStorage:
    disks: dict[str, Disk]
    pools: dict[str, Pool]
    zfs_installed: bool = True


class DiskStore:
    def __init__(self) -> None:
        self.nodes: dict[str, NodeStorage] = {}

    def node(self, name: str) -> NodeStorage:
        """A node's disks and pools (created on first use, so any node name has them)."""
        if name not in self.nodes:
            self.nodes[name] = _default_node(name)
        return self.nodes[name]

    def disk_rows(
        self, name: str, include_partitions: bool, skipsmart: bool
    ) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for dev, disk in self.node(name).disks.items():
            rows += disk.rows(dev, include_partitions, skipsmart)
        return sorted(rows, key=lambda r: str(r["devpath"]))

    def pool_rows(self, name: str) -> list[dict[str, Any]]:
        pools = self.node(name).pools
        return [pools[p].row(p) for p in sorted(pools)]

    def put_disk(self, node: str, dev: str, body: Any) -> None:
        where = f"/_sim/disks/{node}/{dev}"
        dev = dev.removeprefix("/dev/")
        if not dev.isalnum():
            raise ControlError(f"{where}: a kernel device name, e.g. sda or nvme0n1")
        spec = fields.body_object(body, where, _DISK_KEYS)
        disks = self.node(node).disks
        disk = disks.get(dev) or Disk(
            "hdd",
            "ST4000VN008-2DR166",
            _serial(node, dev),
            "ATA     ",
            "0x5000c500b1234567",
            4000787030016,
            5400,
            gpt=0,
        )
        changes: dict[str, Any] = {}
        for key in ("health", "model", "serial", "vendor", "used"):
            if key in spec:
                changes[key] = fields.text(spec[key], where, key)
        if "health" in changes and len(changes["health"]) > 64:
            raise ControlError(f"{where}: 'health' is a short SMART verdict such as FAILED!")
        if "type" in spec:
            changes["type"] = fields.choice(spec["type"], where, "type", DISK_TYPES)
        for key in ("size", "rpm"):
            if key in spec:
                changes[key] = fields.integer(spec[key], where, key, -1 if key == "rpm" else 0)
        if "wearout" in spec:
            wearout = spec["wearout"]
            if wearout != "N/A" and not (isinstance(wearout, int) and 0 <= wearout <= 100):
                raise ControlError(f"{where}: 'wearout' is 0..100 (% left) or \"N/A\"")
            changes["wearout"] = wearout
        for key, value in changes.items():
            setattr(disk, key, value)
        disks[dev] = disk

    def delete_disk(self, node: str, dev: str) -> None:
        if self.node(node).disks.pop(dev.removeprefix("/dev/"), None) is None:
            raise ControlError(f"/_sim/disks/{node}/{dev}: no such disk")

    def put_pool(self, node: str, pool: str, body: Any) -> None:
        where = f"/_sim/zfs/{node}/{pool}"
        if (
            not pool
            or not pool[0].isalpha()
            or not pool.replace("-", "").replace("_", "").isalnum()
        ):
            raise ControlError(f"{where}: not a pool name")
        spec = fields.body_object(body, where, ("health", "size", "alloc", "frag"))
        pools = self.node(node).pools
        current = pools.get(pool) or Pool(3_985_729_650_688, 400_000_000_000)
        health = fields.choice(spec.get("health", current.health), where, "health", POOL_HEALTH)
        size = fields.integer(spec.get("size", current.size), where, "size", 1)
        alloc = fields.integer(spec.get("alloc", current.alloc), where, "alloc")
        frag = fields.integer(spec.get("frag", current.frag), where, "frag")
        if alloc > size:
            raise ControlError(f"{where}: 'alloc' is larger than 'size'")
        pools[pool] = Pool(size, alloc, frag, current.dedup, health)

    def delete_pool(self, node: str, pool: str) -> None:
        if self.node(node).pools.pop(pool, None) is None:
            raise ControlError(f"/_sim/zfs/{node}/{pool}: no such pool")

    def put_zfs(self, node: str, body: Any) -> None:
        where = f"/_sim/zfs/{node}"
        spec = fields.body_object(body, where, ("installed",))
        self.node(node).zfs_installed = bool(fields.flag(spec.get("installed"), where, "installed"))


def _serial(node: str, dev: str) -> str:
    return hashlib.sha256(f"{node}/{dev}".encode()).hexdigest()[:12].upper()


def _default_node(name: str) -> NodeStorage:
    tag = hashlib.sha256(name.encode()).hexdigest()
    disks = {
        "nvme0n1": Disk(
            "nvme",
            "Samsung SSD 980 PRO 1TB",
            f"S5GXNX0T{tag[:6].upper()}",
            "unknown",
            f"eui.002538b121b0{tag[6:10]}",
            1_000_204_886_016,
            0,
            wearout=98,
            used="LVM",
        ),
    }
    for dev in ("sda", "sdb"):
        serial = _serial(name, dev)
        disks[dev] = Disk(
            "ssd",
            "CT2000MX500SSD1",
            serial,
            "ATA     ",
            f"0x500a0751{serial[:6].lower()}",
            2_000_398_934_016,
            0,
            wearout=97,
            partitions=[
                Partition(1, 1_031_168, "BIOS boot"),
                Partition(2, 1_073_741_824, "EFI"),
                Partition(3, 1_999_324_143_104, "ZFS"),
            ],
            by_id=f"ata-CT2000MX500SSD1_{serial}",
        )
    disks["nvme0n1"].by_id = f"nvme-Samsung_SSD_980_PRO_1TB_S5GXNX0T{tag[:6].upper()}"
    pools = {"rpool": Pool(1_992_864_825_344, 120_259_084_288)}
    return NodeStorage(disks, pools)
