"""The command line: each subcommand parses its flags and calls one function."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pvewatch import __version__
from pvewatch.config.load import DEFAULT_CONFIG_PATH
from pvewatch.config.types import Config
from pvewatch.errors import ConfigError, PvewatchError, StoreError
from pvewatch.sinks.table import SINK_TYPES

if TYPE_CHECKING:
    from pvewatch.lifecycle.reload import ConfigSource


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
        choices=("debug", "info", "warning", "error"),
        help="level of pvewatch's own log on stderr (default: log.level, else info)",
    )
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="text lines or JSON lines (default: log.format, else text)",
    )


def _command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, what: str, example: str
) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with an example."""
    return sub.add_parser(
        name,
        help=what,
        description=what[0].upper() + what[1:] + ".",
        epilog="example:\n  " + example.replace("\n", "\n  "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(value: str) -> timedelta:
    """`30s`, `15m`, `2h`, `7d`."""
    m = _DURATION.match(value.strip())
    if m is None:
        raise argparse.ArgumentTypeError(f"expected a duration like 2h, 30m or 7d, got {value!r}")
    return timedelta(**{_UNITS[m.group(2)]: float(m.group(1))})


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
        epilog="examples:\n  pvewatch demo\n  pvewatch check-config --connect -c watch.yaml\n"
        "  pvewatch run -c /etc/pvewatch/watch.yaml\n"
        "run `pvewatch COMMAND --help` for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pvewatch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = _command(
        sub,
        "check-config",
        "validate a config file and summarize it; with --connect, also try every cluster "
        "endpoint and sink",
        "pvewatch check-config --connect -c /etc/pvewatch/watch.yaml",
    )
    _add_config_flag(p)
    p.add_argument(
        "--connect",
        action="store_true",
        help="connect to each endpoint (TLS, auth, PVE version, what the token sees) and "
        "each sink (no request sent); exit 1 if one cannot work",
    )

    p = _command(
        sub,
        "run",
        "watch the configured clusters until stopped",
        "pvewatch run -c /etc/pvewatch/watch.yaml --log-format json",
    )
    _add_config_flag(p)
    _add_log_flag(p)

    p = _command(
        sub,
        "once",
        "poll every cluster once, deliver what is pending, exit (for cron)",
        "pvewatch once -c /etc/pvewatch/watch.yaml || echo 'a cluster could not be polled'",
    )
    _add_config_flag(p)
    _add_log_flag(p)

    p = _command(
        sub,
        "events",
        "show recent events from the state store",
        "pvewatch events --since 2h --type 'guest.*' --cluster prod --json",
    )
    _add_config_flag(p)
    p.add_argument("--since", default="1h", help="how far back: 30m, 1h, 2d or an ISO time")
    p.add_argument(
        "--type", dest="type_pattern", metavar="GLOB", help="e.g. guest.* or node.offline"
    )
    p.add_argument("--cluster", metavar="NAME")
    p.add_argument("--limit", type=int, default=1000, metavar="N")
    p.add_argument("--json", action="store_true", help="one JSON object per line")

    p = _command(
        sub,
        "demo",
        "run the simulator with churn and a watcher against it, print events",
        "pvewatch demo --duration 60 --churn 30",
    )
    p.add_argument("--duration", type=float, metavar="SECS", help="stop by itself after SECS")
    p.add_argument("--guests", type=int, default=12, metavar="N")
    p.add_argument("--churn", type=float, default=20.0, metavar="EVENTS_PER_MIN")
    p.add_argument("--interval", type=float, default=2.0, metavar="SECS")
    _add_log_flag(p)

    p = _command(
        sub,
        "simulate",
        "serve a simulated PVE cluster API (for demos and tests)",
        "pvewatch simulate --listen 127.0.0.1:8006 --guests 50 --churn 10 \\\n"
        "    --token 'pvewatch@pve!demo=3f0c9b3e-4a57-4d8e-9d0b-0f6f5c1d2e3a'",
    )
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
    p.add_argument("--notify-url", metavar="URL", help="send PVE notifications here (webhook)")
    p.add_argument("--notify-token", metavar="TOKEN", help="... with Authorization: Bearer TOKEN")
    _api_parser(sub)
    _silence_parser(sub)
    _delivery_parsers(sub)
    p = _command(
        sub,
        "status",
        "show which replica leads which cluster, since when, and each cluster's last poll",
        "pvewatch status -c /etc/pvewatch/watch.yaml",
    )
    _add_config_flag(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p = _command(
        sub,
        "health",
        "probe the running daemon's /healthz through its own listen address, TLS and basic "
        "auth (http.health_check); exit 0 healthy, 1 not (the Docker image's HEALTHCHECK)",
        "pvewatch health -c /etc/pvewatch/watch.yaml",
    )
    _add_config_flag(p)
    p.add_argument("--timeout", type=float, default=5.0, metavar="SECS")
    return parser


def _delivery_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = _command(
        sub,
        "deliveries",
        "list the deliveries still pending or dead (given up), oldest first",
        "pvewatch deliveries --sink hook --state dead",
    )
    _add_config_flag(p)
    p.add_argument("--sink", metavar="NAME", help="only this sink")
    p.add_argument("--state", choices=("pending", "dead"), help="default: both")
    p.add_argument("--limit", type=int, default=1000, metavar="N")
    p.add_argument("--json", action="store_true", help="one JSON object per line")

    p = _command(
        sub,
        "replay",
        "queue deliveries again from scratch: one event's, or every dead one",
        "pvewatch replay --sink hook --all-dead",
    )
    _add_config_flag(p)
    p.add_argument("--sink", metavar="NAME", help="only this sink (default: every sink)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--event", metavar="ID", help="this event, whatever its state")
    which.add_argument("--all-dead", action="store_true", help="every dead delivery")

    p = _command(
        sub,
        "test-sink",
        "send a sample event to a sink through its real format, signing and HTTP path, "
        "and print the answer",
        "pvewatch test-sink hook -c /etc/pvewatch/watch.yaml",
    )
    _add_config_flag(p)
    p.add_argument("name", metavar="NAME", help="the sink's name in the config")


def _delivery_command(args: argparse.Namespace) -> int:
    from pvewatch.operate import deliveries

    config = _load(_config_path(args.config))
    if config is None:
        return 2
    out, err = sys.stdout, sys.stderr
    if args.command == "deliveries":
        return deliveries.list_deliveries(
            config, sink=args.sink, state=args.state, as_json=args.json, limit=args.limit,
            out=out, err=err,
        )  # fmt: skip
    if args.command == "replay":
        return deliveries.replay(config, sink=args.sink, event_id=args.event, out=out, err=err)
    return asyncio.run(deliveries.sink_test(config, args.name, out=out, err=err))


def _api_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = _command(
        sub,
        "api",
        "read the PVE API like `pvesh get`, through the configured auth and TLS (read-only)",
        "pvewatch api get /nodes --cluster prod",
    )
    # GET is the only method there is: nothing typed here can change a cluster.
    methods = p.add_subparsers(dest="method", metavar="METHOD", required=True)
    g = _command(
        methods,
        "get",
        "GET an API path and print its data",
        "pvewatch api get '/cluster/resources?type=vm' -o json",
    )
    g.add_argument("path", metavar="PATH", help="below /api2/json, e.g. /cluster/status")
    g.add_argument("--cluster", metavar="NAME", help="default: the first configured cluster")
    g.add_argument("-o", "--output", choices=("table", "json"), default="table")
    _add_config_flag(g)


def _silence_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "silence",
        help="silence matching events for a while (recorded, sent nowhere)",
        description="Silences keep matching events from every sink while they are active; "
        "the events are still recorded. MATCH is KEY=GLOB pairs joined by commas (KEY!=GLOB "
        "negates), keys: cluster, type, resource, node, vmid, name, pool, tag, severity.",
        epilog="example:\n  pvewatch silence add --match 'cluster=lab,resource=qemu/100,"
        "type=guest.*' --for 2h --comment 'disk swap'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="add a silence, active from now")
    add.add_argument(
        "--match", required=True, metavar="MATCH", help="e.g. cluster=lab,type=guest.*"
    )
    add.add_argument(
        "--for", dest="duration", required=True, type=parse_duration, help="e.g. 2h, 30m, 7d"
    )
    add.add_argument("--comment", default="", help="why (shown by silence list)")
    add.add_argument("--by", metavar="NAME", help="who (default: $USER)")
    show = actions.add_parser("list", help="list the silences not yet expired")
    show.add_argument("--all", action="store_true", help="also the expired ones")
    show.add_argument("--json", action="store_true", help="one JSON object per line")
    remove = actions.add_parser("remove", help="remove a silence by its id")
    remove.add_argument("id", metavar="ID")
    for q in (add, show, remove):
        _add_config_flag(q)


def _silence(args: argparse.Namespace) -> int:
    from pvewatch.operate import silences

    config = _load(_config_path(args.config))
    if config is None:
        return 2
    path, now = config.store, datetime.now(UTC)
    try:
        if args.action == "add":
            by = args.by or os.environ.get("USER") or None
            return silences.add(
                path, args.match, args.duration, args.comment, by, now, sys.stdout, sys.stderr
            )
        if args.action == "list":
            return silences.show(path, now, sys.stdout, everything=args.all, as_json=args.json)
        return silences.remove(path, args.id, sys.stdout, sys.stderr)
    except StoreError as e:
        print(f"cannot use the state store: {e}", file=sys.stderr)
        return 1


def _load(path: Path) -> Config | None:
    from pvewatch.config.load import load_config

    try:
        return load_config(path, os.environ, sink_types=SINK_TYPES)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return None


def _setup_logging(args: argparse.Namespace, config: Config | None) -> None:
    """The flag wins over the config's `log:`, which wins over the defaults."""
    from pvewatch.config.logging import LogConfig
    from pvewatch.observability.logs import setup_logging
    from pvewatch.secret import secret_values

    log = config.log if config is not None else LogConfig()
    secrets = secret_values(config) if config is not None else []
    level, fmt = args.log_level or log.level, args.log_format or log.format
    setup_logging(level, fmt, os.environ, secrets=secrets)


def _config_source(args: argparse.Namespace) -> ConfigSource:
    """What SIGHUP reads: the same file, and the logging set up again for what it says."""
    from pvewatch.config.load import load_config
    from pvewatch.lifecycle.reload import ConfigSource

    path = _config_path(args.config)
    return ConfigSource(
        load=lambda: load_config(path, os.environ, sink_types=SINK_TYPES),
        applied=lambda config: _setup_logging(args, config),
    )


def _exit_cleanly(signum: int, frame: object) -> None:
    """SIGTERM before the event loop takes over signals: nothing is in flight, so stop."""
    raise SystemExit(0)


def _events(args: argparse.Namespace) -> int:
    from pvewatch.sinks.log import format_text
    from pvewatch.store.opening import open_store

    config = _load(_config_path(args.config))
    if config is None:
        return 2
    if config.store.postgres is None and not config.store.path.exists():
        print(f"no state store at {config.store.path} (has pvewatch run yet?)", file=sys.stderr)
        return 1
    try:
        since = parse_since(args.since, datetime.now(UTC))
    except argparse.ArgumentTypeError as e:
        print(e, file=sys.stderr)
        return 2
    try:
        with open_store(config.store) as store:
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
    if args.command == "run":
        # A SIGHUP during start-up stays pending (its default action would end the
        # process) until the event loop takes it: pvewatch.lifecycle.reload.Requests.install.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    if args.command in ("run", "once", "demo"):
        signal.signal(signal.SIGTERM, _exit_cleanly)
    if args.command in ("run", "once"):
        from pvewatch.lifecycle import daemon

        config = _load(_config_path(args.config))
        if config is None:
            return 2
        _setup_logging(args, config)
        try:
            if args.command == "once":
                return asyncio.run(daemon.once(config))
            return asyncio.run(daemon.run(config, source=_config_source(args)))
        except PvewatchError as e:  # e.g. http.listen in use, the store unreadable
            print(f"pvewatch {args.command}: {e}", file=sys.stderr)
            return 1
    if args.command == "events":
        return _events(args)
    if args.command == "silence":
        return _silence(args)
    if args.command in ("deliveries", "replay", "test-sink"):
        return _delivery_command(args)
    if args.command == "status":
        from pvewatch.operate.status import show_status

        config = _load(_config_path(args.config))
        if config is None:
            return 2
        now = datetime.now(UTC)
        return show_status(config, now, sys.stdout, sys.stderr, as_json=args.json)
    if args.command == "health":
        from pvewatch.operate.health import health_command

        return health_command(_config_path(args.config), os.environ, sys.stdout, args.timeout)
    if args.command == "demo":
        from pvewatch.operate.demo import run_demo

        _setup_logging(args, None)
        return run_demo(
            duration_secs=args.duration,
            guests=args.guests,
            churn_per_min=args.churn,
            interval_secs=args.interval,
        )
    if args.command == "check-config":
        from pvewatch.config.load import check_config
        from pvewatch.operate.connect import check_and_connect

        path = _config_path(args.config)
        if args.connect:
            return check_and_connect(path, os.environ, sys.stdout, sys.stderr)
        return check_config(path, os.environ, sys.stdout, sys.stderr, sink_types=SINK_TYPES)
    if args.command == "api":
        from pvewatch.operate.api import api_command

        return api_command(
            _config_path(args.config),
            os.environ,
            args.path,
            cluster=args.cluster,
            output=args.output,
            out=sys.stdout,
            err=sys.stderr,
        )
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
                notify_url=args.notify_url,
                notify_token=args.notify_token,
            )
        )
    raise AssertionError(f"unhandled command {args.command}")
