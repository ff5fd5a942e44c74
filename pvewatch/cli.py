"""The command line: each subcommand parses its flags and calls one function."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pvewatch import __version__
from pvewatch.config import DEFAULT_CONFIG_PATH, Config
from pvewatch.errors import ConfigError, StoreError


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


def _add_log_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="level of pvewatch's own log on stderr (default: info)",
    )


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(value: str, now: datetime) -> datetime:
    """`30s`, `15m`, `1h`, `2d` ago, or an ISO 8601 time (UTC if no offset)."""
    m = _DURATION.match(value.strip())
    if m:
        return now - timedelta(**{_UNITS[m.group(2)]: float(m.group(1))})
    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--since: expected a duration like 1h or 30m, or an ISO time, got {value!r}"
        ) from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


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

    p = sub.add_parser("run", help="watch the configured clusters until stopped")
    _add_config_flag(p)
    _add_log_flag(p)

    p = sub.add_parser(
        "once", help="poll every cluster once, deliver what is pending, exit (for cron)"
    )
    _add_config_flag(p)
    _add_log_flag(p)

    p = sub.add_parser("events", help="show recent events from the state store")
    _add_config_flag(p)
    p.add_argument("--since", default="1h", help="how far back: 30m, 1h, 2d or an ISO time")
    p.add_argument(
        "--type", dest="type_pattern", metavar="GLOB", help="e.g. guest.* or node.offline"
    )
    p.add_argument("--cluster", metavar="NAME")
    p.add_argument("--limit", type=int, default=1000, metavar="N")
    p.add_argument("--json", action="store_true", help="one JSON object per line")

    p = sub.add_parser(
        "demo", help="run the simulator with churn and a watcher against it, print events"
    )
    p.add_argument("--duration", type=float, metavar="SECS", help="stop by itself after SECS")
    p.add_argument("--guests", type=int, default=12, metavar="N")
    p.add_argument("--churn", type=float, default=20.0, metavar="EVENTS_PER_MIN")
    p.add_argument("--interval", type=float, default=2.0, metavar="SECS")
    _add_log_flag(p)

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


def _load(path: Path) -> Config | None:
    from pvewatch.config import load_config

    try:
        return load_config(path, os.environ)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return None


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Their INFO lines (every job run, every request) drown what matters.
    for noisy in ("apscheduler", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.root.level))


def _exit_cleanly(signum: int, frame: object) -> None:
    """SIGTERM before the event loop takes over signals: nothing is in flight, so stop."""
    raise SystemExit(0)


def _events(args: argparse.Namespace) -> int:
    from pvewatch.sinks.log import format_text
    from pvewatch.store.sqlite import SqliteStore

    config = _load(_config_path(args.config))
    if config is None:
        return 2
    if not config.store.path.exists():
        print(f"no state store at {config.store.path} (has pvewatch run yet?)", file=sys.stderr)
        return 1
    try:
        since = parse_since(args.since, datetime.now(UTC))
    except argparse.ArgumentTypeError as e:
        print(e, file=sys.stderr)
        return 2
    try:
        with SqliteStore(config.store.path) as store:
            events = store.events(
                since=since,
                type_pattern=args.type_pattern,
                cluster=args.cluster,
                limit=args.limit,
            )
    except StoreError as e:
        print(f"cannot read the state store: {e}", file=sys.stderr)
        return 1
    for event in events:
        print(json.dumps(event.to_dict()) if args.json else format_text(event))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("run", "once", "demo"):
        signal.signal(signal.SIGTERM, _exit_cleanly)
    if args.command in ("run", "once"):
        from pvewatch import daemon

        _setup_logging(args.log_level)
        config = _load(_config_path(args.config))
        if config is None:
            return 2
        return asyncio.run(daemon.run(config) if args.command == "run" else daemon.once(config))
    if args.command == "events":
        return _events(args)
    if args.command == "demo":
        from pvewatch.demo import run_demo

        _setup_logging(args.log_level)
        return run_demo(
            duration_secs=args.duration,
            guests=args.guests,
            churn_per_min=args.churn,
            interval_secs=args.interval,
        )
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
