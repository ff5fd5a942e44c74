"""The command line: parses the arguments with the table of subcommands
(`pvewatch.commands.COMMANDS`) and calls the function of the one chosen."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Sequence

from pvewatch import __version__
from pvewatch.commands import COMMANDS, Command


def build_parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
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
    _add(parser, commands, "command")
    return parser


def _add(parser: argparse.ArgumentParser, commands: Sequence[Command], kind: str) -> None:
    sub = parser.add_subparsers(dest=kind, metavar=kind.upper(), required=True)
    for command in commands:
        what = command.description or command.what[0].upper() + command.what[1:] + "."
        p = sub.add_parser(
            command.name,
            help=command.what,
            description=what,
            epilog="example:\n  " + command.example.replace("\n", "\n  ")
            if command.example
            else None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.flags(p)
        if command.actions:
            _add(p, command.actions, command.action_kind)
        else:
            p.set_defaults(chosen=command)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command: Command = args.chosen
    if command.holds_sighup:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    if command.sigterm_exits:
        signal.signal(signal.SIGTERM, _exit_cleanly)
    return command.function()(args)


def _exit_cleanly(signum: int, frame: object) -> None:
    """SIGTERM before the event loop takes over signals: nothing is in flight, so stop."""
    raise SystemExit(0)
