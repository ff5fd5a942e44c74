"""`pvewatch demo`: a simulated cluster with churn, and a watcher against it over HTTPS
with the simulator's certificate fingerprint pinned. Events print as they happen.

A newcomer watches for a minute, so the demo shortens the holds: with the defaults a stop
is sent once it has lasted 30 s (a node going offline, 60 s), and one that a start undoes
within that is never sent, so the churn's stops would rarely show. Here every hold is
`DEMO_HOLD_SECS`, and the banner says so.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import uuid
from pathlib import Path

from pvewatch.config.rules import RulesConfig
from pvewatch.config.shape import DEFAULT_HOLD_SECS, ShapeConfig
from pvewatch.config.types import (
    ClusterConfig,
    Config,
    HttpConfig,
    SinkConfig,
    StoreConfig,
    TlsConfig,
)
from pvewatch.lifecycle import daemon, startup
from pvewatch.secret import Secret
from pvewatch.simulator import SimOptions
from pvewatch.simulator.server import SimServer
from pvewatch.sinks.log import LogOptions

# Every held transition (stops, pauses, a node offline, ...) waits this long in the demo.
DEMO_HOLD_SECS = 5.0
DEMO_HOLDS = dict.fromkeys(DEFAULT_HOLD_SECS, DEMO_HOLD_SECS)


def run_demo(
    *,
    duration_secs: float | None,
    guests: int,
    churn_per_min: float,
    interval_secs: float,
) -> int:
    token = f"pvewatch@pve!demo={uuid.uuid4()}"
    options = SimOptions(
        listen="127.0.0.1:0",
        guests=guests,
        churn_per_min=churn_per_min,
        tokens=(token,),
        seed=random.SystemRandom().randrange(1 << 30),
        offline_expiry_secs=60.0,
    )
    with SimServer(options) as sim, tempfile.TemporaryDirectory() as tmp:
        config = demo_config(sim, token, Path(tmp), interval_secs)
        print(_banner(sim, churn_per_min, duration_secs), flush=True)

        async def main() -> int:
            stop = asyncio.Event()
            if duration_secs is not None:
                asyncio.get_running_loop().call_later(duration_secs, stop.set)
            return await daemon.run(config, stop=stop, on_listening=_print_endpoints)

        try:
            return asyncio.run(main())
        except KeyboardInterrupt:
            return 0


def demo_config(sim: SimServer, token: str, tmp: Path, interval_secs: float) -> Config:
    """A watcher of `sim` that prints every event, with the holds shortened."""
    assert sim.fingerprint is not None
    return Config(
        clusters=(
            ClusterConfig(
                name="demo",
                endpoints=(sim.url,),
                token=Secret(token),
                tls=TlsConfig(fingerprints=(sim.fingerprint,)),
                interval_secs=interval_secs,
                timeout_secs=5.0,
            ),
        ),
        store=StoreConfig(path=tmp / "state.db"),
        # Any free port: a pvewatch already running here keeps 9886.
        http=HttpConfig(listen="127.0.0.1:0"),
        sinks=(SinkConfig("console", "log", LogOptions(format="text", path="-")),),
        rules=RulesConfig(
            shape=ShapeConfig(hold_secs=dict.fromkeys(DEFAULT_HOLD_SECS, DEMO_HOLD_SECS))
        ),
    )


def _print_endpoints(url: str) -> None:
    print(f"  metrics and health: {url}/metrics  {url}/healthz  {url}/readyz\n", flush=True)


def _banner(sim: SimServer, churn: float, duration: float | None) -> str:
    url, fingerprint = sim.url, sim.fingerprint or ""
    until = f"for {duration:g} s" if duration is not None else "until Ctrl-C"
    return "\n".join(
        [
            "pvewatch demo",
            f"  simulated PVE API : {url}/api2/json  (pinned SHA-256 {fingerprint[:23]}…)",
            f"  churn             : {churn:g} random changes per minute",
            f"  holds             : a stop is sent once it has lasted {DEMO_HOLD_SECS:g} s "
            f"(by default {DEFAULT_HOLD_SECS['guest.stopped']:g} s; rules.shape.hold)",
            f"  script it         : curl -sk -X PATCH {url}/_sim/resources/qemu/100 "
            '-d \'{"status":"stopped"}\'',
            f"  running {until}; the first poll is the baseline, changes print below.",
        ]
    )


def demo_command(args: argparse.Namespace) -> int:
    """`pvewatch demo`."""
    startup.logging_from(args, None)
    return run_demo(
        duration_secs=args.duration,
        guests=args.guests,
        churn_per_min=args.churn,
        interval_secs=args.interval,
    )
