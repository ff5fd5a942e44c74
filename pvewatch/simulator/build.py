"""The initial layout of a simulated cluster, made from the options and their seed: nodes
with real-looking sizes, a qemu/lxc mix with pools, tags and HA, per-node storages and SDN
zones. The same seed always builds the same cluster.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pvewatch.simulator import SimOptions
from pvewatch.simulator.entities import Guest, Node, Storage, Zone

GIB = 1024**3
POOLS = ("production", "staging", "lab/ci")
TAG_SETS = (None, "prod;web", "db;prod", "ci", "infra", "backup;prod", "dev", None)
NAMES = ("web", "db", "cache", "ci-runner", "dns", "proxy", "mail", "git", "mon", "app")
# (storage id, plugintype, content, shared)
STORAGE_KINDS = (
    ("local", "dir", "iso,backup,vztmpl", 0),
    ("local-lvm", "lvmthin", "rootdir,images", 0),
    ("nfs-backup", "nfs", "backup", 1),
    ("ceph-vm", "rbd", "images,rootdir", 1),
)


@dataclass(slots=True)
class Layout:
    nodes: dict[str, Node]
    guests: dict[str, Guest]
    storages: list[Storage]
    zones: list[Zone]
    pools: list[str]


def build_layout(options: SimOptions, now: float) -> Layout:
    rng = random.Random(options.seed)
    nodes = {n.name: n for n in _nodes(rng, options.nodes, now)}
    names = list(nodes)
    guests = {g.id: g for g in _guests(rng, options.guests, names, now)}
    if any(g.hastate for g in guests.values()):
        for node in nodes.values():
            node.hastate = "online"
    return Layout(
        nodes=nodes,
        guests=guests,
        storages=_storages(rng, options.storages_per_node, names),
        zones=_zones(names),
        pools=sorted({*POOLS, "lab"}),  # a nested pool needs its parent
    )


def _nodes(rng: random.Random, count: int, now: float) -> list[Node]:
    nodes = []
    for i in range(1, max(1, count) + 1):
        cores = rng.choice((8, 16, 32, 64))
        # Usable RAM is a little less than the nominal size, as on real hosts.
        maxmem = rng.choice((32, 64, 128, 256)) * GIB - rng.randrange(400, 900) * 1024**2
        maxdisk = rng.choice((94, 100, 228, 457)) * GIB + rng.randrange(0, GIB, 4096)
        nodes.append(
            Node(
                name=f"pve{i}",
                nodeid=i,
                ip=f"10.0.0.{10 + i}",
                boot_at=now - rng.randrange(86_400, 40 * 86_400),
                maxcpu=cores,
                maxmem=maxmem,
                maxdisk=maxdisk,
                cpu=rng.uniform(0.01, 0.5),
                mem=int(maxmem * rng.uniform(0.2, 0.8)),
                disk=int(maxdisk * rng.uniform(0.05, 0.4)) // 4096 * 4096,
            )
        )
    return nodes


def _guests(rng: random.Random, count: int, nodes: list[str], now: float) -> list[Guest]:
    guests = []
    for i in range(count):
        vmid = 100 + i
        kind = "qemu" if rng.random() < 0.7 else "lxc"
        template = 1 if kind == "qemu" and rng.random() < 0.03 else 0
        running = not template and rng.random() < 0.7
        maxmem = rng.choice((1, 2, 4, 8, 16)) * GIB
        base = NAMES[rng.randrange(len(NAMES))]
        guests.append(
            Guest(
                type=kind,
                vmid=vmid,
                node=rng.choice(nodes),
                name=f"{base}{i:02d}" if kind == "qemu" else f"{base}-ct{i:02d}",
                status="running" if running else "stopped",
                maxcpu=rng.choice((1, 2, 4, 8)),
                maxmem=maxmem,
                maxdisk=rng.choice((8, 10, 32, 64, 100)) * GIB,
                cpu=rng.uniform(0.001, 0.3),
                mem=int(maxmem * rng.uniform(0.1, 0.9)),
                disk=rng.randrange(200, 4000) * 1024**2 if kind == "lxc" else 0,
                template=template,
                pool=rng.choice((None, None, *POOLS)),
                tags=rng.choice(TAG_SETS),
                hastate="started" if running and rng.random() < 0.15 else None,
                started_at=now - rng.randrange(60, 30 * 86_400) if running else None,
                rates=(
                    rng.randrange(100, 50_000),
                    rng.randrange(100, 80_000),
                    rng.randrange(1_000, 400_000),
                    rng.randrange(1_000, 600_000),
                ),
            )
        )
    return guests


def _storages(rng: random.Random, per_node: int, nodes: list[str]) -> list[Storage]:
    kinds = [*STORAGE_KINDS[:per_node]]
    kinds += [(f"data{k}", "dir", "images,rootdir", 0) for k in range(len(kinds), per_node)]
    storages = []
    for storeid, plugin, content, shared in kinds:  # storage-config order x node order
        shared_size = rng.choice((2, 4, 8)) * 1024**4
        shared_used = int(shared_size * rng.uniform(0.1, 0.7))
        for node in nodes:
            size = shared_size if shared else rng.choice((100, 500, 1800)) * GIB
            used = shared_used if shared else int(size * rng.uniform(0.05, 0.6))
            storages.append(Storage(storeid, node, plugin, content, shared, used, size))
    return storages


def _zones(nodes: list[str]) -> list[Zone]:
    local = [Zone("localnetwork", n, None, "ok") for n in nodes]
    return local + [Zone("lab", n, "simple", "available") for n in nodes]
