"""`pvewatch notify-setup NAME`: the commands that point PVE's (or PBS's) notification
system at pvewatch's `POST /notify/NAME`, filled in from the config.

PVE ≥ 8.3: a webhook endpoint (`pvesh create /cluster/notifications/endpoints/webhook`)
and a matcher sending it every notification; PBS ≥ 3.3: the same through
`proxmox-backup-manager notification ...`. Header, body and secret values are base64 in
both (FACTS-health.md §8); the token goes into the endpoint's secret `token`, which PVE
keeps out of its API answers, and the Authorization header refers to it
(`Bearer {{ secrets.token }}`). The output holds the token: run it, do not paste it
into a ticket.
"""

from __future__ import annotations

import argparse
import base64
import shlex
import socket
import sys
from dataclasses import dataclass
from typing import TextIO

from pvewatch.config.types import Config
from pvewatch.lifecycle import startup
from pvewatch.watch.notifications import BODY_TEMPLATE

TARGET = "pvewatch"  # the endpoint's and the matcher's name on the PVE side


@dataclass(frozen=True, slots=True)
class Setup:
    source: str  # "pve" | "pbs"
    url: str
    token: str


def setup_for(config: Config, name: str, base_url: str | None) -> Setup | str:
    """What to configure on the other side for `name`, or why there is nothing."""
    cluster = next((c for c in config.clusters if c.name == name), None)
    server = next((b for b in config.backup_servers if b.name == name), None)
    if cluster is not None and cluster.notifications is not None:
        source, token = "pve", cluster.notifications.token
    elif server is not None:
        source, token = "pbs", server.notifications.token
    elif cluster is not None:
        return f"cluster {name} has no notifications: (add notifications: {{token_file: ...}})"
    else:
        names = [c.name for c in config.clusters] + [b.name for b in config.backup_servers]
        return f"no cluster or backup server named {name!r} (configured: {', '.join(names)})"
    base = base_url or listener_url(config)
    if base is None:
        return "http.listen is off: pvewatch receives no notifications (or give --url)"
    return Setup(source, f"{base.rstrip('/')}/notify/{name}", token.reveal())


def listener_url(config: Config) -> str | None:
    """The listener's URL as another host reaches it (a wildcard address: this host's name)."""
    http = config.http
    if not http.listen:
        return None
    host, port = http.host_port()
    if host in ("0.0.0.0", "::", ""):
        host = socket.getfqdn()
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if http.tls else 'http'}://{shown}:{port}"


def commands(setup: Setup) -> list[str]:
    """The shell commands, one per line (continued with backslashes)."""
    header_type = f"name=Content-Type,value={_b64('application/json')}"
    header_auth = f"name=Authorization,value={_b64('Bearer {{ secrets.token }}')}"
    options = [
        f"--url {shlex.quote(setup.url)}",
        f"--header {shlex.quote(header_type)}",
        f"--header {shlex.quote(header_auth)}",
        f"--body {shlex.quote(_b64(BODY_TEMPLATE))}",
        f"--secret {shlex.quote(f'name=token,value={_b64(setup.token)}')}",
        "--comment 'pvewatch: notifications to POST /notify'",
    ]
    if setup.source == "pve":
        create = "pvesh create /cluster/notifications/endpoints/webhook"
        endpoint = [f"{create} --name {TARGET} --method post", *options]
        matcher = f"pvesh create /cluster/notifications/matchers --name {TARGET} --target {TARGET}"
        test = f"pvesh create /cluster/notifications/targets/{TARGET}/test"
    else:
        create = f"proxmox-backup-manager notification endpoint webhook create {TARGET}"
        endpoint = [f"{create} --method post", *options]
        matcher = f"proxmox-backup-manager notification matcher create {TARGET} --target {TARGET}"
        test = f"proxmox-backup-manager notification target test {TARGET}"
    return [" \\\n    ".join(endpoint), matcher, test]


def print_setup(config: Config, name: str, base_url: str | None, out: TextIO, err: TextIO) -> int:
    found = setup_for(config, name, base_url)
    if isinstance(found, str):
        print(f"notify-setup: {found}", file=err)
        return 2
    where = "on one node of the cluster" if found.source == "pve" else "on the backup server"
    product = "PVE 8.3" if found.source == "pve" else "PBS 3.3"
    print(f"# Run as root {where} ({product} or later). These lines hold the token.", file=out)
    print(f"# Notifications go to {found.url}", file=out)
    for line in commands(found):
        print(line, file=out)
    print("# The last command sends a test: `pvewatch events --type 'p*.notification'`.", file=out)
    print("# Narrow what is sent with --match-severity / --match-field on the matcher.", file=out)
    return 0


def notify_setup_command(args: argparse.Namespace) -> int:
    """`pvewatch notify-setup NAME`."""
    config = startup.load_from(args)
    if config is None:
        return 2
    return print_setup(config, args.name, args.url, sys.stdout, sys.stderr)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
