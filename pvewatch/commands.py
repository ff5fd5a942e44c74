"""The table of subcommands (`COMMANDS`): each row says what the command does, its flags,
and the function of the module of its feature that runs it (`run`, "module:function", as
console scripts are written). `pvewatch.cli` parses and dispatches with it.

`run` is named, not imported: the chosen command is imported once the arguments are
parsed, so `pvewatch --help` and the Docker HEALTHCHECK's `pvewatch health` load only what
they use, and `run` holds SIGHUP before the daemon's imports (a reload asked during
start-up then waits for the loop instead of ending the process).

Adding a command = a `<name>_command(args)` function beside its feature + one row here.

Over 350 lines: every subcommand with its flags, in one table.
"""

from __future__ import annotations

import argparse
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

from pvewatch.config.load import DEFAULT_CONFIG_PATH

Flags = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]


@dataclass(frozen=True, slots=True)
class Command:
    """One subcommand: `run` gets the parsed arguments; a command with `actions` (`api
    get`, `silence add`) has a subcommand of its own instead."""

    name: str
    what: str  # one line for `pvewatch --help`
    example: str = ""
    flags: Flags = lambda parser: None
    run: str = ""  # "module:function", the function taking the parsed arguments
    actions: tuple[Command, ...] = ()
    action_kind: str = "action"  # what its actions are called (`api`: method)
    description: str = ""  # for `COMMAND --help`; default: `what`
    # A long-running command: SIGTERM ends it cleanly until its event loop takes signals
    # over; `run` also holds SIGHUP until then (pvewatch.lifecycle.reload.Requests).
    sigterm_exits: bool = False
    holds_sighup: bool = False

    def function(self) -> Run:
        """The function `run` names, imported now."""
        module, _, name = self.run.partition(":")
        return cast(Run, getattr(importlib.import_module(module), name))


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(value: str) -> timedelta:
    """`30s`, `15m`, `2h`, `7d`."""
    m = _DURATION.match(value.strip())
    if m is None:
        raise argparse.ArgumentTypeError(f"expected a duration like 2h, 30m or 7d, got {value!r}")
    return timedelta(**{_UNITS[m.group(2)]: float(m.group(1))})


# --- the flags of each command ------------------------------------------------------------


def config_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help=f"config file (default: $PVEWATCH_CONFIG or {DEFAULT_CONFIG_PATH})",
    )


def log_flags(p: argparse.ArgumentParser) -> None:
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


def json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="one JSON object per line")


def _check_config(p: argparse.ArgumentParser) -> None:
    config_flag(p)
    p.add_argument(
        "--connect",
        action="store_true",
        help="connect to each endpoint (TLS, auth, PVE version, what the token sees) and "
        "each sink (no request sent); exit 1 if one cannot work",
    )


def _daemon(p: argparse.ArgumentParser) -> None:
    config_flag(p)
    log_flags(p)


def _events(p: argparse.ArgumentParser) -> None:
    config_flag(p)
    p.add_argument("--since", default="1h", help="how far back: 30m, 1h, 2d or an ISO time")
    p.add_argument(
        "--type", dest="type_pattern", metavar="GLOB", help="e.g. guest.* or node.offline"
    )
    p.add_argument("--cluster", metavar="NAME")
    p.add_argument("--limit", type=int, default=1000, metavar="N")
    json_flag(p)


def _demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--duration", type=float, metavar="SECS", help="stop by itself after SECS")
    p.add_argument("--guests", type=int, default=12, metavar="N")
    p.add_argument("--churn", type=float, default=20.0, metavar="EVENTS_PER_MIN")
    p.add_argument("--interval", type=float, default=2.0, metavar="SECS")
    log_flags(p)


def _simulate(p: argparse.ArgumentParser) -> None:
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


def _api_get(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", metavar="PATH", help="below /api2/json, e.g. /cluster/status")
    p.add_argument("--cluster", metavar="NAME", help="default: the first configured cluster")
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    config_flag(p)


def _silence_add(p: argparse.ArgumentParser) -> None:
    p.add_argument("--match", required=True, metavar="MATCH", help="e.g. cluster=lab,type=guest.*")
    p.add_argument(
        "--for", dest="duration", required=True, type=parse_duration, help="e.g. 2h, 30m, 7d"
    )
    p.add_argument("--comment", default="", help="why (shown by silence list)")
    p.add_argument("--by", metavar="NAME", help="who (default: $USER)")
    config_flag(p)


def _silence_list(p: argparse.ArgumentParser) -> None:
    p.add_argument("--all", action="store_true", help="also the expired ones")
    json_flag(p)
    config_flag(p)


def _silence_remove(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", metavar="ID")
    config_flag(p)


def _deliveries(p: argparse.ArgumentParser) -> None:
    config_flag(p)
    p.add_argument("--sink", metavar="NAME", help="only this sink")
    p.add_argument("--state", choices=("pending", "dead"), help="default: both")
    p.add_argument("--limit", type=int, default=1000, metavar="N")
    json_flag(p)


def _replay(p: argparse.ArgumentParser) -> None:
    config_flag(p)
    p.add_argument("--sink", metavar="NAME", help="only this sink (default: every sink)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--event", metavar="ID", help="this event, whatever its state")
    which.add_argument("--all-dead", action="store_true", help="every dead delivery")


def _test_sink(p: argparse.ArgumentParser) -> None:
    config_flag(p)
    p.add_argument("name", metavar="NAME", help="the sink's name in the config")


def _status(p: argparse.ArgumentParser) -> None:
    config_flag(p)
    json_flag(p)


def _health(p: argparse.ArgumentParser) -> None:
    config_flag(p)
    p.add_argument("--timeout", type=float, default=5.0, metavar="SECS")


def _notify_setup(p: argparse.ArgumentParser) -> None:
    config_flag(p)
    p.add_argument("name", metavar="NAME", help="a cluster or backup server with notifications")
    p.add_argument(
        "--url",
        metavar="URL",
        help="pvewatch's listener as PVE reaches it (default: from http.listen)",
    )


# --- the table ------------------------------------------------------------------------------

COMMANDS: tuple[Command, ...] = (
    Command(
        "check-config",
        "validate a config file and summarize it; with --connect, also try every cluster "
        "endpoint and sink",
        "pvewatch check-config --connect -c /etc/pvewatch/watch.yaml",
        _check_config,
        "pvewatch.operate.connect:check_config_command",
    ),
    Command(
        "run",
        "watch the configured clusters until stopped",
        "pvewatch run -c /etc/pvewatch/watch.yaml --log-format json",
        _daemon,
        "pvewatch.lifecycle.daemon:run_command",
        sigterm_exits=True,
        holds_sighup=True,
    ),
    Command(
        "once",
        "poll every cluster once, deliver what is pending, exit (for cron)",
        "pvewatch once -c /etc/pvewatch/watch.yaml || echo 'a cluster could not be polled'",
        _daemon,
        "pvewatch.lifecycle.daemon:once_command",
        sigterm_exits=True,
    ),
    Command(
        "events",
        "show recent events from the state store",
        "pvewatch events --since 2h --type 'guest.*' --cluster prod --json",
        _events,
        "pvewatch.operate.events:events_command",
    ),
    Command(
        "demo",
        "run the simulator with churn and a watcher against it, print events",
        "pvewatch demo --duration 60 --churn 30",
        _demo,
        "pvewatch.operate.demo:demo_command",
        sigterm_exits=True,
    ),
    Command(
        "simulate",
        "serve a simulated PVE cluster API (for demos and tests)",
        "pvewatch simulate --listen 127.0.0.1:8006 --guests 50 --churn 10 \\\n"
        "    --token 'pvewatch@pve!demo=3f0c9b3e-4a57-4d8e-9d0b-0f6f5c1d2e3a'",
        _simulate,
        "pvewatch.operate.simulate:simulate_command",
    ),
    Command(
        "notify-setup",
        "print the pvesh (PVE) or proxmox-backup-manager (PBS) commands that send a "
        "cluster's or backup server's notifications to pvewatch",
        "pvewatch notify-setup lab --url https://pvewatch.example:9886",
        _notify_setup,
        "pvewatch.operate.notify_setup:notify_setup_command",
    ),
    Command(
        "api",
        "read the PVE API like `pvesh get`, through the configured auth and TLS (read-only)",
        "pvewatch api get /nodes --cluster prod",
        # GET is the only method there is: nothing typed here can change a cluster.
        action_kind="method",
        actions=(
            Command(
                "get",
                "GET an API path and print its data",
                "pvewatch api get '/cluster/resources?type=vm' -o json",
                _api_get,
                "pvewatch.operate.api:api_get_command",
            ),
        ),
    ),
    Command(
        "silence",
        "silence matching events for a while (recorded, sent nowhere)",
        "pvewatch silence add --match 'cluster=lab,resource=qemu/100,type=guest.*' --for 2h "
        "--comment 'disk swap'",
        description="Silences keep matching events from every sink while they are active; "
        "the events are still recorded. MATCH is KEY=GLOB pairs joined by commas (KEY!=GLOB "
        "negates), keys: cluster, type, resource, node, vmid, name, pool, tag, severity.",
        actions=(
            Command(
                "add",
                "add a silence, active from now",
                "",
                _silence_add,
                "pvewatch.operate.silences:add_command",
            ),
            Command(
                "list",
                "list the silences not yet expired",
                "",
                _silence_list,
                "pvewatch.operate.silences:list_command",
            ),
            Command(
                "remove",
                "remove a silence by its id",
                "",
                _silence_remove,
                "pvewatch.operate.silences:remove_command",
            ),
        ),
    ),
    Command(
        "deliveries",
        "list the deliveries still pending or dead (given up), oldest first",
        "pvewatch deliveries --sink hook --state dead",
        _deliveries,
        "pvewatch.operate.deliveries:deliveries_command",
    ),
    Command(
        "replay",
        "queue deliveries again from scratch: one event's, or every dead one",
        "pvewatch replay --sink hook --all-dead",
        _replay,
        "pvewatch.operate.deliveries:replay_command",
    ),
    Command(
        "test-sink",
        "send a sample event to a sink through its real format, signing and HTTP path, "
        "and print the answer",
        "pvewatch test-sink hook -c /etc/pvewatch/watch.yaml",
        _test_sink,
        "pvewatch.operate.deliveries:test_sink_command",
    ),
    Command(
        "status",
        "show which replica leads which cluster, since when, and each cluster's last poll",
        "pvewatch status -c /etc/pvewatch/watch.yaml",
        _status,
        "pvewatch.operate.status:status_command",
    ),
    Command(
        "health",
        "probe the running daemon's /healthz through its own listen address, TLS and basic "
        "auth (http.health_check); exit 0 healthy, 1 not (the Docker image's HEALTHCHECK)",
        "pvewatch health -c /etc/pvewatch/watch.yaml",
        _health,
        "pvewatch.operate.health:health_command",
    ),
)
