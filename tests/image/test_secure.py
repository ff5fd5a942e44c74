"""The image with its listener secured, locked down, and given a state directory it cannot
write: the HEALTHCHECK (`pvewatch health`) turns healthy with basic auth and with TLS from
a mounted config, the env-only config runs read-only with no capability, and a root-owned
bind mount is refused with the uid that needs it."""

from __future__ import annotations

import json
from pathlib import Path

import bcrypt
import httpx

from pvewatch.simulator.certs import make_self_signed
from tests.e2e.harness import wait_for
from tests.image.support import (
    TOKEN,
    Built,
    Container,
    Simulator,
    free_port,
    owned_file,
)

PASSWORD = "probe-pw-7f3a9c"


def _mounted_config(tmp: Path, sim: Simulator, http: dict[str, object]) -> list[str]:
    """`docker run` options mounting a config with `http` and its secrets, all owned by
    uid 10001 as the docs say."""
    tmp.chmod(0o755)
    config = {
        "clusters": [{"name": "lab", "endpoints": [sim.url], "interval_secs": 1,
                      "token_file": "/run/secrets/pve_token"}],
        "http": http,
    }  # fmt: skip
    owned_file(tmp / "pve_token", TOKEN)
    owned_file(tmp / "health_password", PASSWORD + "\n")
    owned_file(tmp / "watch.yaml", json.dumps(config), mode=0o640)
    return ["-v", f"{tmp / 'watch.yaml'}:/etc/pvewatch/watch.yaml:ro",
            "-v", f"{tmp / 'pve_token'}:/run/secrets/pve_token:ro",
            "-v", f"{tmp / 'health_password'}:/run/secrets/health_password:ro"]  # fmt: skip


def _auth() -> dict[str, object]:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(10)).decode()
    return {
        "basic_auth_users": {"prometheus": hashed},
        "health_check": {"user": "prometheus", "password_file": "/run/secrets/health_password"},
    }


def test_healthy_with_basic_auth(built: Built, sim: Simulator, tmp_path: Path) -> None:
    """Defect 3: /healthz answered 401 to the old HEALTHCHECK: unhealthy for good."""
    listen = f"127.0.0.1:{free_port()}"
    options = _mounted_config(tmp_path, sim, {"listen": listen, **_auth()})
    container = Container(built, "auth", options=options)
    health = container.wait_health("healthy")
    assert health["Log"][-1]["Output"].startswith(f"ok: http://{listen}/healthz")
    assert httpx.get(f"http://{listen}/healthz", timeout=10).status_code == 401
    assert PASSWORD not in container.logs()


def test_healthy_with_tls_and_basic_auth(built: Built, sim: Simulator, tmp_path: Path) -> None:
    """Defect 3: the old HEALTHCHECK spoke plain http to a TLS listener."""
    pair = make_self_signed("pvewatch.example")
    owned_file(tmp_path / "metrics.crt", pair.cert_pem.decode(), mode=0o644)
    owned_file(tmp_path / "metrics.key", pair.key_pem.decode())
    listen = f"127.0.0.1:{free_port()}"
    tls = {
        "cert_file": "/etc/pvewatch/tls/metrics.crt",
        "key_file": "/etc/pvewatch/tls/metrics.key",
    }
    options = _mounted_config(
        tmp_path, sim, {"listen": listen, "tls_server_config": tls, **_auth()}
    )
    options += ["-v", f"{tmp_path / 'metrics.crt'}:{tls['cert_file']}:ro",
                "-v", f"{tmp_path / 'metrics.key'}:{tls['key_file']}:ro"]  # fmt: skip
    container = Container(built, "tls", options=options)
    health = container.wait_health("healthy")
    assert health["Log"][-1]["Output"].startswith(f"ok: https://{listen}/healthz")
    assert PASSWORD not in container.logs()


def test_env_only_config_read_only_without_capabilities(
    built: Built, sim: Simulator, tmp_path: Path
) -> None:
    tmp_path.chmod(0o755)
    token = owned_file(tmp_path / "pve_token", TOKEN)
    listen = f"127.0.0.1:{free_port()}"
    container = Container(
        built,
        "locked",
        options=[
            "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "-e", f"PVE_ENDPOINT={sim.url}", "-e", "PVE_INTERVAL_SECS=1",
            "-e", f"PVEWATCH_LISTEN={listen}", "-v", f"{token}:/run/secrets/pve_token:ro",
        ],
    )  # fmt: skip
    container.wait_health("healthy")

    def ready() -> bool:
        return httpx.get(f"http://{listen}/readyz", timeout=10).status_code == 200

    wait_for(ready, timeout=60, what="/readyz 200, read-only")
    host = container.inspect()["HostConfig"]
    assert (host["ReadonlyRootfs"], host["CapDrop"]) == (True, ["ALL"])
    assert host["SecurityOpt"] == ["no-new-privileges"]


def test_a_state_directory_it_cannot_write_names_the_uid(
    built: Built, sim: Simulator, tmp_path: Path
) -> None:
    """Defect 6: a root-owned bind mount gave "unable to open database file", no more."""
    tmp_path.chmod(0o755)
    token = owned_file(tmp_path / "pve_token", TOKEN)
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    options = ["-e", f"PVE_ENDPOINT={sim.url}", "-v", f"{token}:/run/secrets/pve_token:ro",
               "-v", f"{state}:/var/lib/pvewatch"]  # fmt: skip
    container = Container(built, "rootdir", options=options, health=False)
    assert container.exit_code() == 1
    logs = container.logs()
    assert "/var/lib/pvewatch is not writable by uid 10001 (gid 10001)" in logs, logs
    assert "chown -R 10001:10001" in logs
