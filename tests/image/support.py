"""Containers of the image under test: started with the tests' label on the host's network
(the private engine has no bridge), their health and logs read back, waited for with
deadlines."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.harness import wait_for
from tests.image.engine import LABEL, Engine

TOKEN = "pvewatch@pve!image=1c9d5e7a-0b2f-4d83-a6e1-5f40c2b9d817"
UID = 10001


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def owned_file(path: Path, content: str, mode: int = 0o600) -> Path:
    """A file for a bind mount, owned by the image's user as the docs say (`chown 10001`)."""
    path.write_text(content)
    path.chmod(mode)
    os.chown(path, UID, UID)
    return path


@dataclass
class Built:
    engine: Engine
    image: str
    base: str


class Container:
    """One `docker run -d` of the image; `name` is unique to the test session."""

    _count = 0

    def __init__(
        self,
        built: Built,
        role: str,
        args: Sequence[str] = (),
        *,
        options: Sequence[str] = (),
        health: bool = True,
    ) -> None:
        Container._count += 1
        self.engine = built.engine
        self.name = f"pvw-it-{role}-{os.getpid()}-{Container._count}"
        self.listen = ""  # host:port of its listener, when a test gives it one
        timing = (["--health-interval", "2s", "--health-timeout", "10s",
                   "--health-start-period", "60s"] if health else ["--no-healthcheck"])  # fmt: skip
        self.engine.run(
            "run", "-d", "--name", self.name, "--label", LABEL, "--network", "host",
            *timing, *options, built.image, *args,
        )  # fmt: skip

    def inspect(self) -> dict[str, Any]:
        found = json.loads(self.engine.out("inspect", self.name))
        assert isinstance(found, list)
        return dict(found[0])

    def health(self) -> dict[str, Any]:
        return dict(self.inspect()["State"].get("Health") or {})

    def wait_health(self, status: str, timeout: float = 90) -> dict[str, Any]:
        """The health record once its status is `status` (healthy / unhealthy)."""

        def reached() -> dict[str, Any] | None:
            health = self.health()
            state = self.inspect()["State"]
            if not state["Running"]:
                raise AssertionError(f"{self.name} exited {state['ExitCode']}: {self.logs()}")
            return health if health.get("Status") == status else None

        try:
            return wait_for(reached, timeout=timeout, what=f"{self.name} {status}")
        except AssertionError as e:
            raise AssertionError(f"{e}; health {self.health()}; logs:\n{self.logs()}") from None

    def last_probe(self) -> str:
        log = self.health().get("Log") or [{}]
        return str(log[-1].get("Output", "")).strip()

    def logs(self) -> str:
        done = self.engine.run("logs", self.name, check=False)
        return done.stdout + done.stderr

    def exec(self, *command: str) -> str:
        return self.engine.out("exec", self.name, *command)

    def wait_log(self, text: str, timeout: float = 60, after: int = 0) -> int:
        """The position just past the first `text` in the logs found after `after`."""

        def seen() -> int | None:
            at = self.logs().find(text, after)
            return at + len(text) if at >= 0 else None

        try:
            return wait_for(seen, timeout=timeout, what=f"{text!r} in {self.name}'s log")
        except AssertionError as e:
            raise AssertionError(f"{e}:\n{self.logs()[-4000:]}") from None

    def exit_code(self, timeout: float = 60) -> int:
        def stopped() -> dict[str, Any] | None:
            state = dict(self.inspect()["State"])
            return None if state["Running"] else state

        return int(wait_for(stopped, timeout=timeout, what=f"{self.name} exits")["ExitCode"])


class Simulator:
    """`pvewatch simulate` from the image under test, and its control API."""

    def __init__(self, built: Built) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = ["simulate", f"--listen=127.0.0.1:{self.port}", "--no-tls", f"--token={TOKEN}",
                "--nodes=2", "--guests=10", "--seed=7"]  # fmt: skip
        self.container = Container(built, "sim", args, health=False)
        wait_for(self._answers, timeout=60, what="the simulator answers")

    def _answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/_sim/stats", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def guest(self, status: str) -> str:
        rows = httpx.get(f"{self.url}/_sim/resources", timeout=10).json()
        return str(next(r["id"] for r in rows if r.get("status") == status and "vmid" in r))

    def set_status(self, guest: str, status: str) -> None:
        url = f"{self.url}/_sim/resources/{guest}"
        httpx.patch(url, json={"status": status}, timeout=10).raise_for_status()
