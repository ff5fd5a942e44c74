"""The typed-Struct alternative of issue 17, measured without changing pvewatch: the
simulator's /cluster/resources body decoded generically (the floor), into a
`msgspec.Struct` of every field, into one of the stable (watched) fields only, and that
plus the per-row "unchanged since last poll" compare; and pvewatch's two paths, with every
row unchanged: generic decode, `implausible`, `Normalizer` on dicts (sources other than the
PVE client, or thresholds on), and `decode_stable` then the same on `StableRows` (the PVE
client's quiet poll). CPU medians.

    python -m bench.typed_decode [--guests 10000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

from bench.common import GUESTS_PER_NODE, median
from pvewatch.pve.stable import decode_stable
from pvewatch.simulator import SimOptions
from pvewatch.simulator.cluster import SimCluster
from pvewatch.watch.normalize import Normalizer, implausible


class Stable(msgspec.Struct):
    """The fields of a row that are not counters (what pvewatch watches)."""

    id: str
    type: str | None = None
    status: str | None = None
    node: str | None = None
    name: str | None = None
    vmid: int | None = None
    pool: str | None = None
    tags: str | None = None
    lock: str | None = None
    hastate: str | None = None
    template: int | None = None
    content: str | None = None
    storage: str | None = None
    plugintype: str | None = None
    shared: int | None = None
    level: str | None = None
    network: str | None = None
    network_type: str | None = msgspec.field(default=None, name="network-type")
    zone_type: str | None = msgspec.field(default=None, name="zone-type")
    cgroup_mode: int | None = msgspec.field(default=None, name="cgroup-mode")


class Every(Stable):
    """Stable fields and the counters."""

    cpu: float | None = None
    maxcpu: float | None = None
    mem: int | None = None
    maxmem: int | None = None
    memhost: int | None = None
    disk: int | None = None
    maxdisk: int | None = None
    netin: int | None = None
    netout: int | None = None
    diskread: int | None = None
    diskwrite: int | None = None
    uptime: int | None = None


class StableBody(msgspec.Struct):
    data: list[Stable]


class EveryBody(msgspec.Struct):
    data: list[Every]


def cpu_ms(action: Callable[[], object], repeat: int = 15) -> float:
    action()
    times = []
    for _ in range(repeat):
        started = time.process_time()
        action()
        times.append((time.process_time() - started) * 1000)
    return median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--guests", type=int, default=10_000)
    args = parser.parse_args()
    nodes = max(3, args.guests // GUESTS_PER_NODE)
    cluster = SimCluster(SimOptions(guests=args.guests, nodes=nodes, seed=8))
    body = msgspec.json.encode({"data": cluster.resources(None, time.time())})
    stable, every = msgspec.json.Decoder(StableBody), msgspec.json.Decoder(EveryBody)
    last = {r.id: msgspec.structs.astuple(r) for r in stable.decode(body).data}

    def unchanged() -> int:
        astuple = msgspec.structs.astuple
        return sum(last.get(r.id) == astuple(r) for r in stable.decode(body).data)

    normalizer, now = Normalizer(), datetime.now(UTC)

    def today() -> Any:
        rows = msgspec.json.decode(body)["data"]
        implausible(None, rows)
        return normalizer("bench", rows, now)

    typed_normalizer = Normalizer()

    def typed() -> Any:
        rows = decode_stable(body)
        implausible(None, rows)
        return typed_normalizer("bench", rows, now)

    figures = {
        "floor: generic decode": cpu_ms(lambda: msgspec.json.decode(body)),
        "Struct of every field": cpu_ms(lambda: every.decode(body)),
        "Struct of the stable fields": cpu_ms(lambda: stable.decode(body)),
        "stable Struct + per-row unchanged compare": cpu_ms(unchanged),
        "dict path: generic decode + implausible + Normalizer": cpu_ms(today),
        "typed path: decode_stable + implausible + Normalizer": cpu_ms(typed),
    }
    print(f"{args.guests:,} guests, {len(body) / 1e6:.2f} MB body")
    for what, ms in figures.items():
        print(f"{what:50} {ms:6.1f} ms")


if __name__ == "__main__":
    main()
