"""`pvewatch check-config --connect`: what a token can see (pure), and real connections to
the simulator with a good and a wrong fingerprint, a wrong token, a missing privilege,
and sinks that can or cannot be reached."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pvewatch.config.types import Config, SinkConfig, TlsConfig
from pvewatch.net.probe import Check
from pvewatch.operate.connect import visibility
from pvewatch.operate.report import Section, exit_code, render
from pvewatch.secret import Secret
from pvewatch.sinks.log import LogOptions
from pvewatch.sinks.table import SINK_TYPES
from pvewatch.sinks.webhook_options import WebhookOptions
from tests.e2e.harness import TOKEN, control, simulator
from tests.test_cli import pvewatch

OTHER_FP = ":".join(["5A"] * 32)


def rows(**counts: int) -> list[dict[str, Any]]:
    return [{"type": t, "id": f"{t}/{i}"} for t, n in counts.items() for i in range(n)]


@pytest.mark.parametrize(
    ("resources", "status_error", "tasks", "warnings"),
    [
        (rows(node=3, qemu=10, lxc=2, storage=6), None, 25, []),
        (rows(node=3, qemu=10, storage=6), None, 0, []),  # no tasks yet is fine
        (rows(node=3), None, 4, ["missing VM.Audit", "missing Datastore.Audit"]),
        (rows(node=3, storage=6), None, 4, ["missing VM.Audit"]),
        (rows(node=2, qemu=1, storage=2), "403 Permission check failed (/, Sys.Audit)", None,
         ["missing Sys.Audit on /"]),
        # The default privilege-separated token with no ACL: bare nodes, 403 on status.
        (rows(node=3), "403 Permission check failed (/, Sys.Audit)", None,
         ["missing VM.Audit", "missing Datastore.Audit", "missing Sys.Audit on /"]),
    ],
)  # fmt: skip
def test_visibility_names_the_missing_privilege(
    resources: list[dict[str, Any]], status_error: str | None, tasks: int | None,
    warnings: list[str],
) -> None:  # fmt: skip
    checks = visibility(resources, status_error, tasks, grant="GRANT")
    assert checks[0].status == "ok"
    warned = [c.message for c in checks if c.status == "warn"]
    assert len(warned) == len(warnings)
    for message, expected in zip(warned, warnings, strict=True):
        assert expected in message
    hints = [c.message for c in checks if c.status == "hint"]
    assert hints == (["read-only access to everything: GRANT"] if warnings else [])


def test_visibility_counts() -> None:
    (check,) = visibility(rows(node=2, qemu=3, lxc=1, storage=4, pool=1), None, 7)
    assert check.message == (
        "2 nodes, 4 guests (3 VMs, 1 containers), 4 storages, 1 pools, 7 recent tasks"
    )


def test_render_and_exit_code() -> None:
    ok = Section("cluster a: https://x:8006", [Check("ok", "tls", "fine")])
    warn = Section("sink s (log)", [Check("warn", "output", "hm"), Check("hint", "", "do X")])
    failed = Section("cluster b: https://y:8006", [Check("fail", "auth", "refused")])
    assert render([ok, warn]) == [
        "cluster a: https://x:8006",
        "  ok    tls: fine",
        "sink s (log)",
        "  WARN  output: hm",
        "          -> do X",
    ]
    assert exit_code([ok, warn]) == 0
    assert exit_code([ok, failed]) == 1


def _write_config(tmp: Path, clusters: list[dict[str, Any]], sinks: dict[str, Any]) -> str:
    path = tmp / "watch.yaml"
    doc = {"clusters": clusters, "store": {"path": str(tmp / "state.db")}, "sinks": sinks}
    path.write_text(json.dumps(doc))
    return str(path)


def _cluster(name: str, url: str, fingerprint: str, token: str = TOKEN) -> dict[str, Any]:
    return {"name": name, "endpoints": [url], "token": token,
            "tls": {"fingerprint": fingerprint}, "timeout_secs": 3}  # fmt: skip


def test_connect_against_the_simulator(tmp_path: Path) -> None:
    wrong_token = TOKEN.rsplit("=", 1)[0] + "=00000000-0000-0000-0000-000000000000"
    with simulator() as sim:
        assert sim.fingerprint
        config = _write_config(
            tmp_path,
            [
                _cluster("good", sim.url, sim.fingerprint),
                _cluster("pinned-wrong", sim.url, OTHER_FP),
                _cluster("bad-token", sim.url, sim.fingerprint, token=wrong_token),
            ],
            {"out": {"type": "log", "path": str(tmp_path / "events.jsonl")}},
        )
        result = pvewatch("check-config", "--connect", "-c", config)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    good = _section(out, "cluster good:")
    assert "ok    tls: certificate matches the pinned fingerprint" in good
    assert "ok    auth: token pvewatch@pve!e2e accepted" in good
    assert "ok    version: Proxmox VE 9." in good
    assert "ok    visible: 3 nodes, 10 guests" in good
    assert "WARN" not in good
    assert "FAIL" not in good
    pinned = _section(out, "cluster pinned-wrong:")
    assert "FAIL  tls:" in pinned
    assert "does not match the pinned fingerprint" in pinned
    # The fingerprint seen, ready to copy into the config.
    assert f'tls: {{fingerprint: "{sim.fingerprint}"}}' in pinned
    assert "auth" not in pinned  # the token was never sent
    bad = _section(out, "cluster bad-token:")
    assert "ok    tls:" in bad
    assert "FAIL  auth: token pvewatch@pve!e2e refused: GET /api2/json/version: 401" in bad
    assert "ok    output:" in _section(out, "sink out (log)")
    for secret in (TOKEN.rsplit("=", 1)[1], wrong_token.rsplit("=", 1)[1]):
        assert secret not in out + result.stderr


def test_connect_warns_when_the_token_sees_nodes_but_no_guests(tmp_path: Path) -> None:
    with simulator() as sim:
        assert sim.fingerprint
        with control(sim) as c:
            nodes = [r for r in c.get("/resources").json() if r["type"] == "node"]
            c.put("/resources", json=nodes).raise_for_status()
        config = _write_config(tmp_path, [_cluster("lab", sim.url, sim.fingerprint)], {})
        result = pvewatch("check-config", "--connect", "-c", config)
    assert result.returncode == 0, result.stdout + result.stderr  # a warning is not a failure
    lab = _section(result.stdout, "cluster lab:")
    assert "ok    visible: 3 nodes, 0 guests" in lab
    assert "WARN  privileges: sees nodes but no guests: missing VM.Audit" in lab
    assert "pveum acl modify / --tokens 'pvewatch@pve!e2e' --roles PVEAuditor" in lab


def test_connect_reports_an_endpoint_that_is_down(tmp_path: Path) -> None:
    port = _free_port()
    config = _write_config(tmp_path, [_cluster("gone", f"https://127.0.0.1:{port}", OTHER_FP)], {})
    result = pvewatch("check-config", "--connect", "-c", config)
    assert result.returncode == 1
    assert f"FAIL  connect: 127.0.0.1:{port}: cannot connect" in result.stdout


def test_connect_with_an_invalid_config_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "watch.yaml"
    config.write_text("clusters: []\n")
    result = pvewatch("check-config", "--connect", "-c", str(config))
    assert result.returncode == 2
    assert "clusters: at least one cluster is required" in result.stderr


def _section(out: str, title: str) -> str:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = next(
        (i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")), len(lines)
    )
    return "\n".join(lines[start:end])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield int(server.getsockname()[1])


def _sink_check(url: str, tls: TlsConfig | None = None) -> Section:
    sink = SinkConfig("hook", "webhook", WebhookOptions(Secret(url), tls=tls or TlsConfig()))
    section = Section("sink hook (webhook)")
    section.checks += asyncio.run(SINK_TYPES["webhook"].run_check(sink, Config(clusters=())))
    return section


def test_webhook_sink_reachable_without_a_request(listening: int) -> None:
    section = _sink_check(f"http://127.0.0.1:{listening}/secret-path?token=abc")
    (check,) = section.checks
    assert (check.status, check.what) == ("ok", "connect")
    assert f"127.0.0.1:{listening} reachable" in check.message
    assert "secret-path" not in check.message
    assert "abc" not in check.message


def test_webhook_sink_unreachable() -> None:
    (check,) = _sink_check(f"http://127.0.0.1:{_free_port()}/").checks
    assert (check.status, check.what) == ("fail", "connect")


def test_webhook_sink_tls_is_verified_with_the_sinks_settings() -> None:
    with simulator() as sim:  # a TLS server with a self-signed certificate
        (refused,) = _sink_check(sim.url + "/hook").checks
        (accepted,) = _sink_check(sim.url + "/hook", TlsConfig(verify=False)).checks
    assert (refused.status, refused.what) == ("fail", "connect")
    assert "certificate" in refused.message
    assert accepted.status == "ok"
    assert "TLS handshake done" in accepted.message


def test_log_sink_paths(tmp_path: Path) -> None:
    def check(path: str) -> Check:
        sink = SinkConfig("file", "log", LogOptions(path=path))
        (result,) = asyncio.run(SINK_TYPES["log"].run_check(sink, Config(clusters=())))
        return result

    assert check("-").status == "ok"
    assert check(str(tmp_path / "new.jsonl")).status == "ok"
    assert check(str(tmp_path / "missing-dir" / "x.jsonl")).status == "fail"


def test_connect_lists_each_health_check_with_its_privilege_and_result(tmp_path: Path) -> None:
    with simulator() as sim:
        assert sim.fingerprint
        with control(sim) as c:
            # No Sys.Audit: HA, QDevice, disks and backups are refused; Ceph is readable
            # with Datastore.Audit (and not installed), certificates with any privilege.
            user = TOKEN.partition("=")[0]
            acl = {"/": ["VM.Audit", "Datastore.Audit"]}
            c.put(f"/acl/{user}", json=acl).raise_for_status()
        config = _write_config(tmp_path, [_cluster("lab", sim.url, sim.fingerprint)], {})
        result = pvewatch("check-config", "--connect", "-c", config)
    assert result.returncode == 0, result.stdout + result.stderr  # warnings only
    lab = _section(result.stdout, "cluster lab:")
    found = {
        line.split("check ")[1].split(":")[0]: line.split()[0] + " " + line.split(": ")[1]
        for line in lab.splitlines()
        if " check " in line
    }
    assert found == {
        "ha": "WARN disabled", "ceph": "ok idle", "replication": "ok idle",
        "qdevice": "WARN disabled", "certificates": "ok up", "disks": "WARN disabled",
        "backups": "WARN disabled",
    }, lab  # fmt: skip
    assert "check ha: disabled: 403: the token lacks Sys.Audit on / (needs Sys.Audit on /)" in lab
    assert "check certificates: up: 4 watched, 0 bad now (needs any user)" in lab
