"""The compose files, read by the real compose (v2 when the engine has it, else Debian
bookworm's docker-compose 1.29), and the try-out stack brought up with them: the simulator
and pvewatch, both healthy by their own health checks.

The stack runs on the host's network (the private engine makes no bridge): see `stack`
for the few changes that needs; everything else is the stack's own. Prometheus and Grafana are
not started (their images come from Docker Hub)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.harness import wait_for
from tests.image.conftest import REPO
from tests.image.engine import LABEL, Engine
from tests.image.support import Built

DEPLOY = REPO / "deploy"
FILES = ["compose.yaml", "compose.real.yaml", "compose.ha.yaml"]


def _compose(engine: Engine, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*engine.compose(), *args], env=engine.env, cwd=DEPLOY, capture_output=True,
        text=True, timeout=timeout, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("name", FILES)
def test_compose_accepts_the_file(built: Built, name: str) -> None:
    """Defect 5: compose v1 refused all three (`'name' does not match any of the regexes`)."""
    done = _compose(built.engine, "-f", name, "config", "--quiet")
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "" or "WARNING" not in done.stderr.upper(), done.stderr


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def stack(built: Built, tmp_path: Path) -> Iterator[list[str]]:
    """compose.yaml as it is, but for what the host's network needs: no published ports
    (compose refuses them with `network_mode: host`), `simulator` resolving to loopback,
    pvewatch listening on loopback, and the image under test."""
    for port in (8006, 9886):  # the stack's own ports, here on the host's network
        if not _port_free(port):
            pytest.fail(f"port {port} is taken on this host: the try-out stack needs it")
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for name, service in doc["services"].items():
        service.pop("ports", None)
        service.update(image=built.image, network_mode="host", labels={LABEL: "1"})
        if name == "pvewatch":
            service["extra_hosts"] = ["simulator:127.0.0.1"]
            service["environment"]["PVEWATCH_LISTEN"] = "127.0.0.1:9886"
    (tmp_path / "compose.yaml").write_text(json.dumps(doc))
    files = ["--project-name", f"pvw-it-{os.getpid()}", "--project-directory", str(DEPLOY),
             "--file", str(tmp_path / "compose.yaml")]  # fmt: skip
    try:
        yield files
    finally:
        _compose(built.engine, *files, "down", "--volumes", "--remove-orphans")


def test_the_try_out_stack_comes_up_healthy(built: Built, stack: list[str]) -> None:
    """Defect 4 beside it: a simulator that inherited the image's HEALTHCHECK was never
    healthy (compose.ha.yaml; compose.yaml had its own)."""
    up = _compose(built.engine, *stack, "up", "-d", "--no-build", "simulator", "pvewatch")
    assert up.returncode == 0, up.stderr
    for service in ("simulator", "pvewatch"):
        ids = _compose(built.engine, *stack, "ps", "-q", service).stdout.split()
        assert len(ids) == 1, (service, ids)

        def healthy(container: str = ids[0]) -> bool:
            state = built.engine.out("inspect", "--format", "{{json .State}}", container)
            return bool(json.loads(state).get("Health", {}).get("Status") == "healthy")

        try:
            wait_for(healthy, timeout=120, what=f"the stack's {service} healthy")
        except AssertionError:
            logs = built.engine.run("logs", ids[0], check=False)
            raise AssertionError(f"{service} not healthy:\n{logs.stdout}{logs.stderr}") from None
    probe = built.engine.out("inspect", "--format", "{{json .State.Health.Log}}", ids[0])
    assert "ok: http://127.0.0.1:9886/healthz answered 200" in probe
