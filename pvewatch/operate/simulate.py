"""`pvewatch simulate`: a simulated PVE cluster API (pvewatch.simulator) on a socket, for
demos and tests, until stopped."""

from __future__ import annotations

import argparse

from pvewatch.simulator import SimOptions
from pvewatch.simulator.server import serve_forever


def simulate_command(args: argparse.Namespace) -> int:
    return serve_forever(
        SimOptions(
            listen=args.listen,
            nodes=args.nodes,
            guests=args.guests,
            storages_per_node=args.storages_per_node,
            seed=args.seed,
            pve_version=args.pve_version,
            tokens=tuple(args.token),
            user=args.user,
            password=args.password,
            churn_per_min=args.churn,
            tls=not args.no_tls,
            offline_expiry_secs=args.offline_expiry,
            auth_fail_delay_secs=args.auth_fail_delay,
            notify_url=args.notify_url,
            notify_token=args.notify_token,
        )
    )
