"""The command line as a user runs it: a real process, its output and its exit code."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from pvewatch import __version__
from pvewatch.cli import build_parser
from pvewatch.commands import COMMANDS, Command
from tests.e2e.harness import TOKEN, control, simulator


def pvewatch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pvewatch", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_version() -> None:
    result = pvewatch("--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"pvewatch {__version__}")


def _subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)  # type: ignore[arg-type]


@pytest.mark.parametrize("command", _subcommands())
def test_every_subcommand_has_help(command: str) -> None:
    result = pvewatch(command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: pvewatch {command}")
    # Every command shows how it is used, after its options.
    assert "\nexample:\n  pvewatch " in result.stdout


def _leaves(commands: Sequence[Command]) -> list[Command]:
    return [leaf for c in commands for leaf in (_leaves(c.actions) if c.actions else [c])]


@pytest.mark.parametrize("command", _leaves(COMMANDS), ids=lambda c: c.name)
def test_every_command_runs_a_function_of_its_feature(command: Command) -> None:
    function = command.function()
    assert function.__module__ == command.run.partition(":")[0]
    assert list(inspect.signature(function).parameters) == ["args"]


def test_parsing_loads_no_implementation() -> None:
    # So that `pvewatch health` (the image's HEALTHCHECK) starts quickly, and `run` holds
    # SIGHUP before the daemon's imports (tests/e2e/test_lifecycle.py).
    heavy = ("httpx", "aiohttp", "apscheduler", "sqlite3", "prometheus_client")
    code = (
        "import sys; from pvewatch.cli import build_parser; build_parser().parse_args(['run']);"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    run = [sys.executable, "-c", code]
    result = subprocess.run(run, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_broken_config_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "watch.yaml"
    config.write_text(
        "clusters:\n"
        "  - name: Lab\n"
        "    endpoints: [ftp://x]\n"
        "    token: nope\n"
        "    tls: {fingerprint: 'AB:CD'}\n"
        "    intervall_secs: 10\n"
        "sinks:\n"
        "  console: {type: log, format: xml}\n"
    )
    result = pvewatch("check-config", "-c", str(config))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    for key in (
        "clusters[0].name",
        "clusters[0].endpoints[0]",
        "clusters[0].token",
        "clusters[0].tls.fingerprint",
        "clusters[0].intervall_secs",
        "sinks.console.format",
    ):
        assert key in result.stderr, f"{key} missing from:\n{result.stderr}"
    # run and once refuse the same config the same way.
    assert pvewatch("once", "-c", str(config)).returncode == 2


def test_config_path_from_the_environment(tmp_path: Path) -> None:
    result = pvewatch("check-config", env={"PVEWATCH_CONFIG": str(tmp_path / "missing.yaml")})
    assert result.returncode == 2
    assert "missing.yaml" in result.stderr
    assert "Traceback" not in result.stderr


def _config(tmp: Path, url: str, fingerprint: str) -> Path:
    path = tmp / "watch.yaml"
    path.write_text(
        json.dumps(
            {
                "clusters": [
                    {
                        "name": "cli",
                        "endpoints": [url],
                        "token": "${PVE_TOKEN}",
                        "tls": {"fingerprint": fingerprint},
                        "timeout_secs": 2,
                    }
                ],
                "store": {"path": str(tmp / "state.db")},
                "sinks": {"out": {"type": "log", "format": "json", "path": str(tmp / "out.jsonl")}},
            }
        )
    )
    return path


def test_once_then_events(tmp_path: Path) -> None:
    env = {"PVE_TOKEN": TOKEN}
    with simulator() as sim:
        assert sim.fingerprint
        config = str(_config(tmp_path, sim.url, sim.fingerprint))
        assert pvewatch("once", "-c", config, env=env).returncode == 0  # baseline
        with control(sim) as c:
            rows = c.get("/resources").json()
            vm = next(r for r in rows if r["type"] == "qemu")
            target = next(
                r["node"] for r in rows if r["type"] == "node" and r["node"] != vm["node"]
            )
            c.patch(f"/resources/{vm['id']}", json={"node": target}).raise_for_status()
        assert pvewatch("once", "-c", config, env=env).returncode == 0
        # The API goes away: `once` says so with its exit code.
        with control(sim) as c:
            c.post("/faults", json={"kind": "status", "code": 500, "count": 50})
        failed = pvewatch("once", "-c", config, env=env)
        assert failed.returncode == 1
        assert "cli" in failed.stderr
        assert TOKEN.split("=")[1] not in failed.stderr + failed.stdout

    table = pvewatch("events", "-c", config, "--since", "1h", env=env)
    assert table.returncode == 0
    assert f"guest.migrated {vm['id']}" in table.stdout
    lines = pvewatch("events", "-c", config, "--json", "--type", "guest.*", env=env).stdout
    (event,) = [json.loads(line) for line in lines.splitlines()]
    assert event["change"] == {"field": "node", "old": vm["node"], "new": target}
    none = pvewatch("events", "-c", config, "--type", "node.*", env=env)
    assert (none.returncode, none.stdout) == (0, "")
    bad = pvewatch("events", "-c", config, "--since", "yesterday", env=env)
    assert bad.returncode == 2
    assert "--since" in bad.stderr


def test_once_logs_the_config_warnings_check_config_prints(tmp_path: Path) -> None:
    with simulator() as sim:
        assert sim.fingerprint
        path = _config(tmp_path, sim.url, sim.fingerprint)
        doc = json.loads(path.read_text())
        doc["clusters"][0]["token"] = TOKEN  # inline, in a file others can read
        doc["http"] = {"listen": "0.0.0.0:0"}
        path.write_text(json.dumps(doc))
        path.chmod(0o644)
        result = pvewatch("once", "-c", str(path))
    assert result.returncode == 0, result.stderr
    logged = [line for line in result.stderr.splitlines() if "config: " in line]
    assert len(logged) == 2, result.stderr
    assert "http.listen: 0.0.0.0:0 is reachable from other machines" in logged[0]
    assert f"{path}: readable by group or others (mode 0644)" in logged[1]
    assert f"chmod 600 {path}" in logged[1]
    assert TOKEN.split("=")[1] not in result.stderr + result.stdout
