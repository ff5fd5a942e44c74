"""`pvewatch notify-setup NAME`: the commands hold the URL of /notify/NAME, the header, body
and secret values base64 as PVE and PBS take them, and the body renders (as PVE renders
it) into what pvewatch reads."""

from __future__ import annotations

import base64
import io
import json
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pvewatch.config.types import (
    BackupServerConfig,
    ClusterConfig,
    Config,
    HttpConfig,
    NotificationsConfig,
)
from pvewatch.operate.notify_setup import print_setup
from pvewatch.secret import Secret
from pvewatch.simulator.health.render import render_template
from pvewatch.watch.notifications import notice_event, read_notice
from tests.simulator.support import HEALTH_CAPTURED

TOKEN = "6b1f0e9c2d4a7358b0c1e2f3"


def config(listen: str = "127.0.0.1:9886") -> Config:
    lab = ClusterConfig(
        "lab", ("https://pve1:8006",), notifications=NotificationsConfig(Secret(TOKEN))
    )
    quiet = ClusterConfig("quiet", ("https://pve9:8006",))
    pbs = BackupServerConfig("pbs1", NotificationsConfig(Secret(TOKEN + "-pbs")))
    return Config(clusters=(lab, quiet), backup_servers=(pbs,), http=HttpConfig(listen=listen))


def setup(name: str, url: str | None = None, listen: str = "127.0.0.1:9886") -> list[list[str]]:
    out, err = io.StringIO(), io.StringIO()
    assert print_setup(config(listen), name, url, out, err) == 0, err.getvalue()
    lines = out.getvalue().replace("\\\n", " ").splitlines()
    return [shlex.split(line) for line in lines if not line.startswith("#")]


def options(words: list[str], name: str) -> list[str]:
    return [words[i + 1] for i, w in enumerate(words) if w == f"--{name}"]


def decoded(value: str) -> str:
    return base64.b64decode(value, validate=True).decode()


def test_pve_endpoint_matcher_and_test() -> None:
    endpoint, matcher, test = setup("lab", "https://pvewatch.example:9886/")
    assert endpoint[:3] == ["pvesh", "create", "/cluster/notifications/endpoints/webhook"]
    assert options(endpoint, "name") == ["pvewatch"]
    assert options(endpoint, "method") == ["post"]
    assert options(endpoint, "url") == ["https://pvewatch.example:9886/notify/lab"]
    headers = {}
    for header in options(endpoint, "header"):
        name, _, value = header.partition(",value=")
        headers[name.removeprefix("name=")] = decoded(value)
    assert headers == {
        "Content-Type": "application/json",
        "Authorization": "Bearer {{ secrets.token }}",
    }
    (secret,) = options(endpoint, "secret")
    assert secret.startswith("name=token,value=")
    assert decoded(secret.removeprefix("name=token,value=")) == TOKEN
    assert matcher == [
        *("pvesh", "create", "/cluster/notifications/matchers"),
        *("--name", "pvewatch", "--target", "pvewatch"),
    ]
    assert test == ["pvesh", "create", "/cluster/notifications/targets/pvewatch/test"]


@pytest.mark.parametrize(
    ("context", "type_"),
    [
        ("synthetic-webhook-context-pve-vzdump-failed", "backup.failed"),
        ("synthetic-webhook-context-pve-replication-failed", "replication.failed"),
        ("synthetic-webhook-context-pve-test", "pve.notification"),
    ],
)
def test_the_body_renders_into_a_notification(context: str, type_: str) -> None:
    endpoint = setup("lab")[0]
    (body,) = options(endpoint, "body")
    data = json.loads((HEALTH_CAPTURED / f"{context}.json").read_text())
    data.setdefault("message", "")
    rendered = render_template(decoded(body), data)
    notice = read_notice(rendered.encode())
    assert notice.message == data["message"]
    now = datetime(2026, 12, 4, tzinfo=UTC)
    assert notice_event(notice, source="pve", name="lab", now=now).type == type_


def test_pbs_commands() -> None:
    endpoint, matcher, test = setup("pbs1")
    assert endpoint[:6] == [
        *("proxmox-backup-manager", "notification", "endpoint", "webhook", "create"),
        "pvewatch",
    ]
    assert options(endpoint, "url") == ["http://127.0.0.1:9886/notify/pbs1"]
    (secret,) = options(endpoint, "secret")
    assert decoded(secret.removeprefix("name=token,value=")) == TOKEN + "-pbs"
    assert matcher[:4] == ["proxmox-backup-manager", "notification", "matcher", "create"]
    assert test[:4] == ["proxmox-backup-manager", "notification", "target", "test"]


def test_a_wildcard_listener_is_named_by_this_host() -> None:
    endpoint = setup("lab", listen="0.0.0.0:9886")[0]
    (url,) = options(endpoint, "url")
    assert url.endswith(":9886/notify/lab")
    assert "0.0.0.0" not in url


@pytest.mark.parametrize(
    ("name", "listen", "problem"),
    [
        ("quiet", "127.0.0.1:9886", "cluster quiet has no notifications"),
        ("nope", "127.0.0.1:9886", "no cluster or backup server named 'nope'"),
        ("lab", None, "http.listen is off"),
    ],
)
def test_nothing_to_set_up(name: str, listen: str | None, problem: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    cfg = config()
    cfg = Config(cfg.clusters, backup_servers=cfg.backup_servers, http=HttpConfig(listen=listen))
    assert print_setup(cfg, name, None, out, err) == 2
    assert problem in err.getvalue()
    assert out.getvalue() == ""


def test_the_command_line(tmp_path: Path) -> None:
    doc = {
        "clusters": [
            {
                "name": "lab",
                "endpoints": ["https://pve1:8006"],
                "token": "pvewatch@pve!t=5d0b8a52-0c44-4c1e-9a8b-7d6e5f4a3b2c",
                "notifications": {"token": TOKEN},
            }
        ]
    }
    path = tmp_path / "watch.yaml"
    path.write_text(json.dumps(doc))
    path.chmod(0o600)
    run = [sys.executable, "-m", "pvewatch", "notify-setup", "lab", "-c", str(path)]
    result = subprocess.run(run, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "/notify/lab" in result.stdout
    assert base64.b64encode(TOKEN.encode()).decode() in result.stdout
