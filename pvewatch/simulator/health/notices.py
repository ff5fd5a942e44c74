"""The notifications PVE and PBS send, as their templates render them (FACTS-health.md §8):
title, message, severity and `fields` per type. Titles come from `*-subject.txt.hbs`
files that end in a newline, which proxmox-notify turns into a space: PVE's titles end in
one space, and so do these. Times render in UTC (the simulated nodes' local time).

Sources: pve-manager templates/default/ and PVE/VZDump.pm `send_notification`,
PVE/API2/Replication.pm `_handle_job_err`, pve-ha-manager src/templates/default/fencing-*
and NodeStatus.pm, proxmox-backup templates/default/ (2024-06).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pvewatch.simulator.health.render import duration, human_bytes, plaintext_table, timestamp

DOMAIN = "sim.lan"
CLUSTER_NAME = "pvewatch-sim"
SEVERITIES = ("info", "notice", "warning", "error", "unknown")
_GUEST_COLUMNS = [
    ("VMID", "vmid", None),
    ("Name", "name", None),
    ("Status", "status", None),
    ("Time", "time", "duration"),
    ("Size", "size", "human-bytes"),
    ("Filename", "filename", None),
]
_UPDATE_COLUMNS = [  # PVE/API2/APT.pm update_database
    ("Package Name", "package-name", None),
    ("Installed Version", "installed-version", None),
    ("Available Version", "available-version", None),
]
_STUCK_NOTE = (
    "Note: The system  will now reduce the frequency of error reports, as the job\n"
    "appears to be stuck.\n"
)


@dataclass(slots=True)
class Notice:
    type: str
    severity: str
    title: str
    message: str
    fields: dict[str, str]
    timestamp: int
    url: str | None = None  # this notification only, instead of the configured target
    token: str | None = None


@dataclass(slots=True)
class GuestRun:
    """One guest of a vzdump run, as the guest table shows it."""

    vmid: int
    name: str
    status: str  # ok | err | todo (the job died before it)
    secs: int = 0
    size: int = 0
    filename: str | None = None
    log: list[str] = field(default_factory=list)


def fqdn(node: str) -> str:
    return f"{node}.{DOMAIN}"


def subject(line: str) -> str:
    """A rendered `*-subject.txt.hbs`: its closing newline becomes a space."""
    return (line + "\n").replace("\n", " ")


def vzdump_notice(
    node: str,
    job_id: str | None,
    runs: list[GuestRun],
    error: str | None,
    cmdline: str,
    now: float,
) -> Notice:
    failed = bool(error) or any(r.status != "ok" for r in runs)
    status = "backup failed" if failed else "backup successful"
    if error and "\n" not in error:
        status, error = f"{status}: {error}", None
    rows = [
        {"vmid": r.vmid, "name": r.name, "status": r.status, "time": r.secs}
        | {"size": r.size if r.status == "ok" else 0, "filename": r.filename}
        for r in runs
    ]
    logs = f"{cmdline}\n\n" + "".join(
        "".join(f"{r.vmid}: {line}\n" for line in r.log) + "\n" for r in runs
    )
    total = sum(r.size for r in runs if r.status == "ok")
    message = (
        f"{error or ''}\nDetails\n=======\n{plaintext_table(_GUEST_COLUMNS, rows)}\n"
        f"Total running time: {duration(sum(r.secs for r in runs))}\n"
        f"Total size: {human_bytes(total)}\n\nLogs\n====\n{logs}\n"
    )
    fields = {"type": "vzdump", "hostname": node} | ({"job-id": job_id} if job_id else {})
    title = subject(f"vzdump backup status ({fqdn(node)}): {status}")
    return Notice("vzdump", "error" if failed else "info", title, message, fields, int(now))


def should_notify_replication(fail_count: int) -> bool:
    """Replication.pm `_should_mail_at_failcount`: 1, 2, 3, then after 1, 2, 4, 8... days."""
    if fail_count <= 0:
        return False
    if fail_count <= 3:
        return True
    i = 1
    while i * 48 < fail_count:
        i *= 2
    return i * 48 == fail_count


def replication_notice(
    node: str,
    job_id: str,
    target: str,
    schedule: str,
    last_sync: int,
    fail_count: int,
    error: str,
    now: float,
) -> Notice:
    # `Next sync try` renders ERROR: PVE >= 8.4 no longer passes `next-sync` (FACTS §8).
    message = (
        f"Replication job '{job_id}' with target '{target}' and schedule '{schedule}' failed!\n\n"
        f"Last successful sync: {timestamp(last_sync)}\nNext sync try: ERROR\n"
        f"Failure count: {fail_count}\n\n{_STUCK_NOTE if fail_count == 3 else ''}"
        f"Error:\n{error}\n"
    )
    fields = {"type": "replication", "job-id": job_id, "hostname": node}
    title = subject(f"Replication Job: '{job_id}' failed")
    return Notice("replication", "error", title, message, fields, int(now))


def fencing_notice(
    failed: str,
    master: str,
    nodes: dict[str, str],
    resources: list[tuple[str, str, str]],
    now: float,
    succeeded: bool,
) -> Notice:
    """`hostname` is the fenced node, not the sender. `resources`: (sid, node, state)."""
    status = (
        f"fencing: acknowledged - got agent lock for node '{failed}'"
        if succeeded
        else f"Try to fence node '{failed}'"
    )
    action = "successfully fenced" if succeeded else "will now fence"
    node_lines = "".join(
        f"  - {n}: {s} {'[master]' if n == master else ''}\n" for n, s in nodes.items()
    )
    mine = "".join(f"  - {sid} [{n}]: {s}\n" for sid, n, s in resources if n == failed)
    others = "".join(f"  - {sid} [{n}]: {s}\n" for sid, n, s in resources if n != failed)
    message = (
        f"The node '{failed}' in cluster '{CLUSTER_NAME}' failed\n"
        "and needs manual intervention.\n\n"
        f"The PVE HA manager {action} '{failed}'.\nStatus:    {status}\n"
        f"Timestamp: {timestamp(now)}\n\nCluster Node Status:\n--------------------\n"
        f"{node_lines}\nHA Resources:\n-------------\n"
        "The following HA resources were running on the failed node and will be\n"
        f"recovered to a healthy node if possible:\n\n{mine}"
        f"The other HA resources in this cluster are:\n\n{others}"
    )
    title = subject(
        f"Successfully fenced node '{failed}'" if succeeded else f"Trying to fence node '{failed}'"
    )
    fields = {"type": "fencing", "hostname": failed}
    return Notice("fencing", "error", title, message, fields, int(now))


def package_updates_notice(node: str, packages: list[dict[str, str]], now: float) -> Notice:
    """`packages`: {"package-name", "installed-version", "available-version"} each."""
    table = plaintext_table(_UPDATE_COLUMNS, sorted(packages, key=lambda p: p["package-name"]))
    message = f"The following updates are available:\n\n{table}\n"
    title = subject(f"New software packages available ({fqdn(node)})")
    fields = {"type": "package-updates", "hostname": node}
    return Notice("package-updates", "info", title, message, fields, int(now))


def system_mail_notice(node: str, mail_subject: str, body: str, now: float) -> Notice:
    """Mail to root forwarded by proxmox-mail-forward: the Subject as is, severity unknown."""
    fields = {"type": "system-mail", "hostname": node}
    return Notice("system-mail", "unknown", mail_subject, body, fields, int(now))


def test_notice(target: str, now: float) -> Notice:
    message = f"This is a test of the notification target '{target}'.\n"
    return Notice("test", "info", subject("Test notification"), message, {}, int(now))


def pbs_notice(kind: str, ok: bool, params: dict[str, Any], now: float) -> Notice:
    """PBS's job notifications; `params` holds datastore, job-id, remote, remote-store,
    media-pool, label, drive, error as the type needs them."""
    host = str(params.get("hostname", "pbs"))
    store, job = str(params.get("datastore", "store1")), params.get("job-id")
    verdict = "successful" if ok else "failed"
    tape_job = f"'{job}' " if job else ""
    fields: dict[str, str] = {"type": kind, "hostname": host}
    if kind in ("gc", "prune", "sync", "verify", "tape-backup"):
        fields["datastore"] = store
    if kind in ("prune", "sync", "verify") or (kind == "tape-backup" and job):
        fields["job-id"] = str(job or f"{kind[0]}-0a1b2c3d-4e5f")
    if kind == "tape-backup":
        fields["media-pool"] = str(params.get("media-pool", "daily"))
    titles = {
        "gc": f"Garbage Collect Datastore '{store}' {verdict}",
        "prune": f"Pruning datastore '{store}' {verdict}",
        "verify": f"Verify Datastore '{store}' {verdict}",
        "tape-backup": f"Tape Backup {tape_job}datastore '{store}' {verdict}",
        "tape-load": f"Load Media '{params.get('label', 'TAPE01')}' request for drive "
        f"'{params.get('drive', 'lto8')}'",
        "acme": "Could not renew certificate",
        "package-updates": f"New software packages available ({fqdn(host)})",
    }
    remote_store = params.get("remote-store", store)
    if params.get("remote"):
        titles["sync"] = f"Sync remote '{params['remote']}' datastore '{remote_store}' {verdict}"
    else:
        titles["sync"] = f"Sync local datastore '{remote_store}' {verdict}"
    error = params.get("error", "task failed")
    body = f"Datastore: {store}\n\n{'' if ok else f'Error: {error}'}\n\n\n" + (
        "Please visit the web interface for further details:\n\n"
        f"<https://{fqdn(host)}:8007/#pbsServerAdministration:tasks>\n"
    )
    severity = {"tape-load": "notice", "acme": "info", "package-updates": "info"}.get(
        kind, "info" if ok else "error"
    )
    return Notice(kind, severity, subject(titles[kind]), body, fields, int(now))


PBS_TYPES = ("gc", "prune", "sync", "verify", "tape-backup", "tape-load", "acme", "package-updates")
