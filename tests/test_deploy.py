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
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from pvewatch import __version__
from pvewatch.config.load import DEFAULT_CONFIG_PATH, load_config
from pvewatch.config.types import DEFAULT_STORE_PATH, Config
from pvewatch.lifecycle.daemon import FLUSH_TIMEOUT_SECS
from pvewatch.sinks.table import SINK_TYPES
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


def test_the_unit_runs_pvewatch_where_its_defaults_and_the_docs_point() -> None:
    settings = _unit_settings(UNIT.read_text())
    # systemd waits for READY=1 and restarts a loop that stops feeding the watchdog.
    assert settings["Type"] == ["notify"]
    assert "WatchdogSec" in settings
    # The store's default path is in the one directory the dynamic user may write.
    assert DEFAULT_STORE_PATH.parent == Path("/var/lib") / settings["StateDirectory"][0]
    command = settings["ExecStart"][0].split()
    config = Path(command[command.index("--config") + 1])
    assert config == DEFAULT_CONFIG_PATH
    assert config.parent == Path("/etc") / settings["ConfigurationDirectory"][0]
    # The docs' cluster "prod" without a token reads $CREDENTIALS_DIRECTORY/prod.token.
    assert any(c.startswith("prod.token:") for c in settings["LoadCredential"])
    # A stop flushes deliveries for FLUSH_TIMEOUT_SECS before systemd may kill it.
    assert _seconds(settings["TimeoutStopSec"][0]) > FLUSH_TIMEOUT_SECS


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
    config = load_config(DEPLOY / "docker" / "watch.yaml", env, sink_types=SINK_TYPES)
    (cluster,) = config.clusters
    assert (cluster.name, cluster.endpoints) == ("demo", ("http://simulator:8006",))
    assert config.http.listen == "0.0.0.0:9886"
    assert str(config.store.path) == "/var/lib/pvewatch/state.db"
    # A real cluster by environment only.
    env = {"PVE_ENDPOINT": "https://pve1.example:8006", "PVE_TOKEN_FILE": str(token)}
    assert load_config(DEPLOY / "docker" / "watch.yaml", env, sink_types=SINK_TYPES).clusters[
        0
    ].endpoints == ("https://pve1.example:8006",)


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
# What a user of each stack depends on: every pvewatch in it starts with the config, the
# environment and the secrets that stack gives it; it reaches and authenticates to the
# services it is pointed at; Prometheus and Grafana find what they are meant to find.

STACKS = ("compose.yaml", "compose.real.yaml", "compose.ha.yaml")
# compose.real.yaml mounts the user's ./watch.yaml, made from this template (its header).
USER_FILES = {"./watch.yaml": DEPLOY / "docker" / "watch.real.yaml"}
CONTAINER_CONFIG = "/etc/pvewatch/watch.yaml"


def _compose(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((DEPLOY / name).read_text())
    assert isinstance(doc, dict)
    return doc


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


def _pvewatch_services(compose: dict[str, Any]) -> list[str]:
    """The services that run `pvewatch run` (the image's default command or `run`)."""
    return [
        name
        for name, service in compose["services"].items()
        if service.get("image") == "pvewatch:local"
        and (service.get("command") or ["run"])[0] == "run"
    ]


def _placeholder(secret: str) -> str:
    """What a user puts in a secret file the repository does not ship."""
    if "token" in secret:
        return "pvewatch@pve!monitor=8a1e0c2d-3f4d-4c1e-9a8b-7d6e5f4a3b2c\n"
    if secret.endswith("secret"):
        return "whsec_" + "QUJD" * 8 + "\n"
    if "password" in secret:
        return "a-password\n"
    raise AssertionError(f"secret {secret!r}: say here what a user would put in it")


def _image_env() -> dict[str, str]:
    """The ENV of the Dockerfile's last stage."""
    env: dict[str, str] = {}
    for op, args in _instructions((REPO / "Dockerfile").read_text()):
        if op == "ENV":
            env |= dict(pair.split("=", 1) for pair in args.split())
    return env


def stack_config(stack: str, service_name: str, root: Path) -> Config:
    """The config `service_name` of `stack` runs with: its file (mounted, or the image's),
    its environment and secrets laid out under `root`, which stands for the container's
    file system. A config file that others can read, as a mounted one usually is."""
    compose = _compose(stack)
    service = compose["services"][service_name]
    for secret in service.get("secrets", []):
        source = DEPLOY / compose["secrets"][secret]["file"]
        target = root / "run/secrets" / secret
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source.read_text() if source.exists() else _placeholder(secret))
    config = root / CONTAINER_CONFIG.lstrip("/")
    config.parent.mkdir(parents=True, exist_ok=True)
    text = (DEPLOY / "docker" / "watch.yaml").read_text()  # the image's
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if target == CONTAINER_CONFIG:
            text = USER_FILES.get(source, DEPLOY / source).read_text()

    def inside(value: str) -> str:
        for directory in ("/run/secrets/", "/etc/pvewatch/"):
            value = value.replace(directory, f"{root}{directory}")
        return value

    config.write_text(inside(text))
    config.chmod(0o644)
    env = _image_env() | {k: str(v) for k, v in (service.get("environment") or {}).items()}
    return load_config(config, {k: inside(v) for k, v in env.items()}, sink_types=SINK_TYPES)


STACK_SERVICES = [(s, name) for s in STACKS for name in _pvewatch_services(_compose(s))]


@pytest.mark.parametrize(("stack", "service"), STACK_SERVICES)
def test_each_pvewatch_of_each_stack_starts_with_what_its_stack_gives_it(
    tmp_path: Path, stack: str, service: str
) -> None:
    # Loading reads every secret file the config names: only the stack's exist here.
    config = stack_config(stack, service, tmp_path)
    inline = [w for w in config.warnings if "holds secrets inline" in w]
    assert inline == [], "a stack's config keeps its secrets in Docker secrets"


def test_the_try_out_stack_watches_its_simulator_with_the_token_it_accepts(
    tmp_path: Path,
) -> None:
    command = _compose("compose.yaml")["services"]["simulator"]["command"]
    args = dict(a.removeprefix("--").partition("=")[::2] for a in command if a[:2] == "--")
    (cluster,) = stack_config("compose.yaml", "pvewatch", tmp_path).clusters
    assert cluster.token is not None
    assert cluster.token.reveal() == args["token"]
    port = args["listen"].rpartition(":")[2]
    scheme = "http" if "no-tls" in args else "https"
    assert cluster.endpoints == (f"{scheme}://simulator:{port}",)


@pytest.mark.parametrize("stack", [s for s in STACKS if "prometheus" in _compose(s)["services"]])
def test_prometheus_scrapes_the_port_pvewatch_listens_on(tmp_path: Path, stack: str) -> None:
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (target,) = scrape["scrape_configs"][0]["static_configs"][0]["targets"]
    host, _, port = target.rpartition(":")
    assert host in _pvewatch_services(_compose(stack))
    listen = stack_config(stack, host, tmp_path).http.listen
    assert listen is not None
    assert listen.rpartition(":")[2] == port


def test_the_ha_replicas_share_one_config_and_its_database(tmp_path: Path) -> None:
    compose = _compose("compose.ha.yaml")
    replicas = _pvewatch_services(compose)
    assert len(replicas) >= 2
    configs = [stack_config("compose.ha.yaml", r, tmp_path / r) for r in replicas]
    assert len({(c.clusters[0].name, c.clusters[0].endpoints) for c in configs}) == 1
    store = configs[0].store.postgres
    assert store is not None
    assert all(c.store.postgres == store for c in configs)
    assert store.host in compose["services"]
    database = compose["services"][store.host]["environment"]
    assert (database["POSTGRES_USER"], database["POSTGRES_DB"]) == (store.user, store.dbname)
    # The database's password is the secret the replicas read theirs from.
    assert "pg_password" in compose["services"][store.host]["secrets"]
    assert database["POSTGRES_PASSWORD_FILE"] == "/run/secrets/pg_password"


@pytest.mark.parametrize("stack", STACKS)
def test_every_file_a_stack_mounts_exists(stack: str) -> None:
    compose = _compose(stack)
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith(".") and source not in USER_FILES:
                assert (DEPLOY / source).exists(), f"{stack} {name}: {source} does not exist"


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
    topics = ("Quorum", "Events by type", "Events by severity", "Poll latency", "Outbox")
    for topic in (*topics, "Notifications received by result"):
        assert topic in titles
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "pvewatch.yml").read_text()
    )
    # Grafana loads dashboards from where the stacks mount deploy/grafana/dashboards.
    for stack in STACKS:
        volumes = _compose(stack)["services"].get("grafana", {}).get("volumes", [])
        for volume in volumes:
            if volume.startswith("./grafana/dashboards:"):
                assert provider["providers"][0]["options"]["path"] == volume.split(":")[1]


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
    """The series names in the metric reference (each `pvewatch_...` name in it,
    with the suffixes Prometheus adds to histograms, counters and info metrics)."""
    reference = (REPO / "docs" / "metrics.md").read_text()
    names = set(re.findall(r"`(pvewatch_[a-z0-9_]+)", reference))
    assert names, "docs/metrics.md lists no pvewatch_ metric"
    series = set(names)
    for name in names:
        series |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return series
