"""The command line: each subcommand parses its flags and calls one function."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pvewatch import __version__
from pvewatch.config import DEFAULT_CONFIG_PATH


def _config_path(value: str | None) -> Path:
    if value:
        return Path(value)
    return Path(os.environ.get("PVEWATCH_CONFIG") or DEFAULT_CONFIG_PATH)


def _add_config_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help=f"config file (default: $PVEWATCH_CONFIG or {DEFAULT_CONFIG_PATH})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pvewatch",
        description="Watch Proxmox VE clusters and send every change to webhooks, logs "
        "and Prometheus.",
    )
    parser.add_argument("--version", action="version", version=f"pvewatch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("check-config", help="validate a config file and summarize it")
    _add_config_flag(p)

    p = sub.add_parser("simulate", help="serve a simulated PVE cluster API (for demos and tests)")
    p.add_argument("--listen", default="127.0.0.1:8006", metavar="HOST:PORT")
    p.add_argument("--nodes", type=int, default=3, metavar="N")
    p.add_argument("--guests", type=int, default=20, metavar="N", help="qemu+lxc mix")
    p.add_argument("--storages-per-node", type=int, default=2, metavar="N")
    p.add_argument("--seed", type=int, default=1, metavar="N")
    p.add_argument("--pve-version", type=int, choices=(8, 9), default=9)
    p.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="USER@REALM!ID=SECRET",
        help="accept this API token (repeatable)",
    )
    p.add_argument("--user", metavar="NAME", help="accept this user (with --password)")
    p.add_argument("--password", metavar="SECRET")
    p.add_argument(
        "--churn",
        type=float,
        default=0.0,
        metavar="EVENTS_PER_MIN",
        help="random but realistic changes per minute",
    )
    p.add_argument("--no-tls", action="store_true", help="plain HTTP instead of HTTPS")
    p.add_argument(
        "--offline-expiry",
        type=float,
        default=300.0,
        metavar="SECS",
        help="seconds before an offline node's guests turn unknown (PVE: 300)",
    )
    p.add_argument(
        "--auth-fail-delay",
        type=float,
        default=0.0,
        metavar="SECS",
        help="delay of 401 answers (PVE: about 3)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "check-config":
        from pvewatch.config import check_config

        return check_config(_config_path(args.config), os.environ, sys.stdout, sys.stderr)
    if args.command == "simulate":
        from pvewatch.simulator import SimOptions
        from pvewatch.simulator.server import serve_forever

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
            )
        )
    raise AssertionError(f"unhandled command {args.command}")
