"""The packaging and operations kit, checked with the tools that consume it: systemd-analyze
for the unit, hadolint for the Dockerfile, promtool for the alert rules; the compose files,
the image's config and the Grafana dashboard are parsed and checked against what pvewatch
really is. A tool that is not installed skips its test with the reason, or fails it under
CI=true (tests.need)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from pvewatch import __version__
from pvewatch.config import load_config
from tests.need import tool

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
UNIT = DEPLOY / "pvewatch.service"


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=cwd, check=False)


# ------------------------------------------------------------------ systemd


def test_unit_is_hardened_to_exposure_2_or_less() -> None:
    result = run(tool("systemd-analyze"), "security", "--offline=yes", str(UNIT))
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.0, match.group(0)
    assert match.group(2) == "OK", match.group(0)


def test_unit_verifies_silently(tmp_path: Path) -> None:
    # verify wants ExecStart to exist; the install puts pvewatch in /opt/pvewatch.
    executable = shutil.which("true") or "/bin/true"
    text = UNIT.read_text().replace("/opt/pvewatch/bin/pvewatch", executable)
    copy = tmp_path / "pvewatch.service"
    copy.write_text(text)
    result = run(tool("systemd-analyze"), "verify", str(copy))
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_unit_lifecycle_settings() -> None:
    settings = _unit_settings(UNIT.read_text())
    assert settings["Type"] == ["notify"]
    assert settings["DynamicUser"] == ["yes"]
    assert settings["StateDirectory"] == ["pvewatch"]
    assert settings["ConfigurationDirectory"] == ["pvewatch"]
    assert any(c.startswith("prod.token:") for c in settings["LoadCredential"])
    assert settings["CapabilityBoundingSet"] == [""]
    assert "WatchdogSec" in settings
    assert "TimeoutStopSec" in settings
    # The daemon flushes for up to 10 s on stop; systemd must give it longer than that.
    assert _seconds(settings["TimeoutStopSec"][0]) > 10


def _unit_settings(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def _seconds(value: str) -> float:
    m = re.fullmatch(r"(\d+)(s|min)?", value)
    assert m, value
    return float(m.group(1)) * (60 if m.group(2) == "min" else 1)


# ------------------------------------------------------------------ Docker


def test_dockerfile_passes_hadolint() -> None:
    result = run(tool("hadolint"), "--failure-threshold", "warning", "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_essentials() -> None:
    lines = _instructions((REPO / "Dockerfile").read_text())
    froms = [args for op, args in lines if op == "FROM"]
    assert froms == ["${BASE} AS build", "${BASE}"]
    assert lines[0] == ("ARG", "BASE=python:3.11-slim-bookworm")
    ops = dict(lines)  # the last of each instruction
    assert ops["USER"] == "10001:10001"
    assert ops["EXPOSE"] == "9886"
    assert ops["STOPSIGNAL"] == "SIGTERM"
    assert '"/var/lib/pvewatch"' in ops["VOLUME"]
    assert ops["HEALTHCHECK"].endswith('CMD ["pvewatch", "health"]')
    env = " ".join(args for op, args in lines if op == "ENV")
    assert "PVEWATCH_CONFIG=/etc/pvewatch/watch.yaml" in env
    assert "PVEWATCH_LISTEN=127.0.0.1:9886" in env  # loopback unless told otherwise
    assert "org.opencontainers.image.source" in ops["LABEL"]
    # The label's version is the package's (the build also checks it with the installed one).
    versions = {args for op, args in lines if op == "ARG" and args.startswith("VERSION")}
    assert versions == {f"VERSION={__version__}"}


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n\s*", " ", text)
    found = []
    for line in joined.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            op, _, args = line.strip().partition(" ")
            found.append((op.upper(), args.strip()))
    return found


def test_the_image_pins_every_dependency() -> None:
    """deploy/docker/constraints.txt pins, with ==, each runtime requirement of pyproject
    (the image test checks the image holds exactly these versions)."""
    lines = (DEPLOY / "docker" / "constraints.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    names = {re.sub(r"[-_.]+", "-", name).lower() for name in pins}
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["postgres"]
    for requirement in wanted:
        name = re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0]
        assert re.sub(r"[-_.]+", "-", name).lower() in names, requirement
    assert "setuptools" in names  # what builds pvewatch itself


def test_the_images_config_loads_with_the_stacks_settings(tmp_path: Path) -> None:
    token = tmp_path / "pve_token"
    token.write_text((DEPLOY / "docker" / "demo.token").read_text())
    compose = _compose("compose.yaml")
    env = {k: str(v) for k, v in compose["services"]["pvewatch"]["environment"].items()}
    env["PVE_TOKEN_FILE"] = str(token)
    config = load_config(DEPLOY / "docker" / "watch.yaml", env)
    (cluster,) = config.clusters
    assert (cluster.name, cluster.endpoints) == ("demo", ("http://simulator:8006",))
    assert config.http.listen == "0.0.0.0:9886"
    assert str(config.store.path) == "/var/lib/pvewatch/state.db"
    # A real cluster by environment only.
    env = {"PVE_ENDPOINT": "https://pve1.example:8006", "PVE_TOKEN_FILE": str(token)}
    assert load_config(DEPLOY / "docker" / "watch.yaml", env).clusters[0].endpoints == (
        "https://pve1.example:8006",
    )


def test_the_docker_run_of_the_docs_makes_the_secret_readable_by_uid_10001() -> None:
    """A root-owned 0600 secret is "Permission denied" for the image's uid 10001: the docs'
    `docker run` block says to chown it to 10001, before the run."""
    text = (REPO / "docs" / "install.md").read_text()
    docker = text[text.index("## 5. Docker") :]
    block = docker[: docker.index("docker run -d")].rsplit("```sh", 1)[-1]
    assert "chown 10001:10001" in block


def test_dockerignore_keeps_what_the_build_copies() -> None:
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert ignore[0 if ignore[0] == "*" else 1] == "*"
    for needed in ("!pyproject.toml", "!README.md", "!pvewatch/", "!deploy/docker/"):
        assert needed in ignore


# ------------------------------------------------------------------ compose


def _compose(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((DEPLOY / name).read_text())
    assert isinstance(doc, dict)
    return doc


def test_try_out_stack() -> None:
    compose = _compose("compose.yaml")
    services = compose["services"]
    assert set(services) == {"simulator", "pvewatch", "prometheus", "grafana"}
    sim = services["simulator"]
    assert sim["image"] == services["pvewatch"]["image"]  # the same image
    assert sim["command"][0] == "simulate"
    assert "--listen=0.0.0.0:8006" in sim["command"]
    # The simulator accepts exactly the token pvewatch reads from its secret.
    demo_token = (DEPLOY / "docker" / "demo.token").read_text().strip()
    assert f"--token={demo_token}" in sim["command"]
    assert compose["secrets"]["pve_token"]["file"] == "./docker/demo.token"
    assert services["pvewatch"]["secrets"] == ["pve_token"]
    _assert_bind_mounts_exist(compose)


def test_real_cluster_stack_reads_secrets_from_docker_secrets() -> None:
    compose = _compose("compose.real.yaml")
    services = compose["services"]
    assert set(services) == {"pvewatch", "prometheus", "grafana"}
    assert set(services["pvewatch"]["secrets"]) == {"pve_token", "webhook_secret"}
    example = yaml.safe_load((DEPLOY / "docker" / "watch.real.yaml").read_text())
    assert example["clusters"][0]["token_file"] == "/run/secrets/pve_token"
    assert example["sinks"]["hook"]["secret_file"] == "/run/secrets/webhook_secret"
    text = json.dumps(example)
    assert "whsec_" not in text
    assert "!monitor=" not in text
    _assert_bind_mounts_exist(compose, user_provided=frozenset({"./watch.yaml"}))


def test_ha_stack_runs_two_replicas_of_one_config_on_one_postgres(tmp_path: Path) -> None:
    compose = _compose("compose.ha.yaml")
    services = compose["services"]
    assert set(services) == {"postgres", "simulator", "pvewatch-a", "pvewatch-b"}
    replicas = [services["pvewatch-a"], services["pvewatch-b"]]
    for replica in replicas:
        assert replica["volumes"] == ["./docker/watch.ha.yaml:/etc/pvewatch/watch.yaml:ro"]
        assert set(replica["secrets"]) == {"pve_token", "pg_password"}
        assert replica["depends_on"]["postgres"] == {"condition": "service_healthy"}
    postgres = services["postgres"]["environment"]
    assert postgres["POSTGRES_PASSWORD_FILE"] == "/run/secrets/pg_password"
    _assert_bind_mounts_exist(compose)
    # The replicas' config loads, with the secrets where Docker mounts them.
    (tmp_path / "pg_password").write_text("pw\n")
    (tmp_path / "pve_token").write_text((DEPLOY / "docker" / "demo.token").read_text())
    env = {"PG_PASSWORD_FILE": str(tmp_path / "pg_password"),
           "PVE_TOKEN_FILE": str(tmp_path / "pve_token")}  # fmt: skip
    config = load_config(DEPLOY / "docker" / "watch.ha.yaml", env)
    assert config.store.postgres is not None
    assert config.store.postgres.where() == "postgresql://postgres:5432/pvewatch"
    assert postgres["POSTGRES_USER"] == config.store.postgres.user
    assert postgres["POSTGRES_DB"] == config.store.postgres.dbname


@pytest.mark.parametrize("name", ["compose.yaml", "compose.real.yaml", "compose.ha.yaml"])
def test_compose_files_suit_compose_v1_and_the_simulator_checks_its_own_health(name: str) -> None:
    """docker-compose 1.29 (Debian bookworm's) refuses a top-level `name:`; a simulator
    run from the image must not inherit the image's HEALTHCHECK, which probes pvewatch's
    listener (tests/image validates the files with the real compose)."""
    compose = _compose(name)
    top = {key for key in compose if not key.startswith("x-")}
    assert top <= {"services", "secrets", "volumes", "networks", "configs"}
    for service in compose["services"].values():
        if service.get("image") == "pvewatch:local" and service.get("command", [""])[0] == (
            "simulate"
        ):
            assert "_sim/stats" in " ".join(service["healthcheck"]["test"])


def _assert_bind_mounts_exist(
    compose: dict[str, Any], user_provided: frozenset[str] = frozenset()
) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith(".") and source not in user_provided:
                assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"


# ------------------------------------------------------------------ Prometheus


def test_alert_rules_pass_promtool_check() -> None:
    result = run(tool("promtool"), "check", "rules", "alerts.yml", cwd=DEPLOY / "prometheus")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_pass_their_unit_tests() -> None:
    result = run(tool("promtool"), "test", "rules", "alerts_test.yml", cwd=DEPLOY / "prometheus")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_required_alert_exists() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    names = {r["alert"] for group in rules["groups"] for r in group["rules"]}
    assert names >= {
        "PvewatchDown",
        "PvewatchPollsFailing",
        "PvewatchSourceUnreachable",
        "PvewatchDeliveriesFailing",
        "PvewatchDeadLetters",
        "ProxmoxGuestExpectedRunningDown",
        "ProxmoxNodeOffline",
        "ProxmoxQuorumLost",
    }


# ------------------------------------------------------------------ Grafana


def test_dashboard_is_valid_and_provisioned() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "pvewatch.json").read_text())
    assert dashboard["uid"] == "pvewatch"
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    titles = " ".join(p["title"] for p in panels)
    for topic in ("Quorum", "Events by type", "Events by severity", "Poll latency", "Outbox"):
        assert topic in titles
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "pvewatch.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_promql_uses_only_metrics_pvewatch_exports() -> None:
    exported = exported_metric_names()
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "pvewatch.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [dashboard["templating"]["list"][1]["definition"]]
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exprs += [r["expr"] for group in rules["groups"] for r in group["rules"]]
    used = {name for expr in exprs for name in re.findall(r"\bpvewatch_[a-z0-9_]+", expr)}
    assert used, "no pvewatch metric in the dashboard or the rules?"
    assert used <= exported, f"not exported by pvewatch: {sorted(used - exported)}"


def exported_metric_names() -> set[str]:
    """The series names in the README's metric reference (each `pvewatch_...` name in it,
    with the suffixes Prometheus adds to histograms, counters and info metrics)."""
    readme = (REPO / "README.md").read_text()
    names = set(re.findall(r"`(pvewatch_[a-z0-9_]+)", readme))
    assert names, "the README lists no pvewatch_ metric"
    series = set(names)
    for name in names:
        series |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return series
