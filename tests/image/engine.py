"""A Docker engine for the image tests: the one that answers, else a private `dockerd`.

The private daemon leaves the host's network alone (`--iptables=false --bridge=none`: no
bridge, no NAT rule; every container runs with `--network host`) and keeps everything it
makes (overlay2 layers, volumes, containerd state) in one temporary directory, removed with
it. What is missing is installed from Debian's packages: `docker.io` (the engine and a
client), `docker-compose` (v1, when no `docker compose` v2 is there).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

LABEL = "pvewatch-image-test"  # on every container and volume the tests make


def unavailable(reason: str) -> None:
    """Skip, saying why; under CI (CI=true) fail instead: CI must not pass by skipping."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"image tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


def apt_install(*packages: str) -> None:
    """`apt-get install` as CI does: no service started by the package (policy-rc.d), the
    dpkg lock waited for (other jobs may hold it), the lists updated once when needed."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        unavailable(f"{', '.join(packages)} missing and not installable here (root and apt)")
    policy = Path("/usr/sbin/policy-rc.d")
    had_policy = policy.exists()
    if not had_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "-qq",
               "--no-install-recommends", *packages]  # fmt: skip
    try:
        done = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            update = ["apt-get", "-o", "DPkg::Lock::Timeout=300", "update", "-qq"]
            subprocess.run(update, env=env, capture_output=True, check=False)
            done = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            unavailable(f"apt-get install {' '.join(packages)} failed: {done.stderr[-500:]}")
    finally:
        if not had_policy:
            policy.unlink(missing_ok=True)


class Engine:
    """The docker CLI against one engine."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)

    def run(
        self, *args: str, timeout: float = 300, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["docker", *args], env=self.env, capture_output=True, text=True,
            timeout=timeout, check=False, input=input,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise AssertionError(
                f"docker {' '.join(args)} exited {done.returncode}: {done.stderr.strip()[-2000:]}"
            )
        return done

    def out(self, *args: str, timeout: float = 300) -> str:
        return self.run(*args, timeout=timeout).stdout.strip()

    def ok(self, *args: str, timeout: float = 300) -> bool:
        return self.run(*args, timeout=timeout, check=False).returncode == 0

    def compose(self) -> list[str]:
        """The compose command: v2 (`docker compose`) when there, else v1 from Debian."""
        if self.ok("compose", "version", timeout=30):
            return ["docker", "compose"]
        if shutil.which("docker-compose") is None:
            apt_install("docker-compose")
        return ["docker-compose"]

    def image_ids(self) -> set[str]:
        return set(self.out("images", "-aq", "--no-trunc").split())

    def remove_made(self, images_before: set[str]) -> None:
        """Every container and volume labelled as ours, and the images that were not there
        before the tests."""
        for kind, listing in (("container", ["ps", "-aq"]), ("volume", ["volume", "ls", "-q"])):
            found = self.out(*listing, "--filter", f"label={LABEL}").split()
            if found:
                self.run(kind, "rm", "-f" if kind == "container" else "--force", *found,
                         check=False)  # fmt: skip
        made = self.image_ids() - images_before
        if made:
            self.run("rmi", "-f", *sorted(made), check=False)


class PrivateDaemon:
    """`dockerd` with its state in a temporary directory, stopped and removed by close()."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pvw-dockerd-"))
        self.socket = self.dir / "docker.sock"
        self.log = self.dir / "dockerd.log"
        command: Sequence[str] = [
            "dockerd", "--data-root", str(self.dir / "data"), "--exec-root", str(self.dir / "exec"),
            "--pidfile", str(self.dir / "dockerd.pid"), "--host", f"unix://{self.socket}",
            "--storage-driver", "overlay2", "--iptables=false", "--ip6tables=false",
            "--bridge=none",
        ]  # fmt: skip
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def engine(self) -> Engine:
        env = {**os.environ, "DOCKER_HOST": f"unix://{self.socket}"}
        env.pop("DOCKER_CONTEXT", None)
        return Engine(env)

    def wait_ready(self, timeout: float = 90) -> str | None:
        """None once it answers, else why not (its log's tail)."""
        engine = self.engine()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if engine.ok("info", timeout=20):
                return None
            time.sleep(0.5)
        tail = self.log.read_text(errors="replace")[-1500:]
        return f"a private dockerd did not start ({self.log}): {tail}"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        # Anything still mounted below the directory (a daemon killed mid-way) first.
        mounts = Path("/proc/self/mounts").read_text().splitlines()
        below = [m.split()[1] for m in mounts if m.split()[1].startswith(str(self.dir))]
        for target in sorted(below, key=len, reverse=True):
            subprocess.run(["umount", "-l", target], check=False, capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def find_engine() -> tuple[Engine, PrivateDaemon | None]:
    """An engine that answers already, else a private dockerd started here."""
    if shutil.which("docker") is None or shutil.which("dockerd") is None:
        apt_install("docker.io")
    current = Engine(os.environ)
    if current.ok("info", timeout=30):
        return current, None
    if os.geteuid() != 0:
        unavailable("no Docker engine answers, and starting one needs root")
    daemon = PrivateDaemon()
    problem = daemon.wait_ready()
    if problem is not None:
        daemon.close()
        unavailable(problem)
    return daemon.engine(), daemon
