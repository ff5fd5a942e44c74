"""`pvewatch health` against pvewatch's own listener: a real `pvewatch run` process with a
plain listener, basic auth, TLS, and TLS with client certificates and basic auth; the
probe is the real command line reading the same config file and environment."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from pvewatch.config.types import HttpConfig
from pvewatch.operate.health import probe_address
from pvewatch.simulator.certs import make_self_signed
from pvewatch.simulator.server import SimServer
from tests.e2e.harness import TOKEN, simulator, wait_for
from tests.faults.support import cluster_entry, write_config

# bcrypt("s3cret-probe-pw"), cost 4 (quick to check).
PASSWORD = "s3cret-probe-pw"
HASH = "$2b$04$WQEqVcxBrrOxd5DuEQYvb.f3KbYvQ8UwBeP5oOEuB5yecp0/TVHfe"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with simulator() as server:
        yield server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def health(config: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "pvewatch", "health", "-c", str(config), "--timeout", "10"],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert PASSWORD not in done.stdout + done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout  # one line, for `docker inspect`'s health log
    return done.returncode, lines[0]


@contextmanager
def daemon(tmp: Path, sim: SimServer, http: Mapping[str, object], env: dict[str, str] | None = None
           ) -> Iterator[Path]:  # fmt: skip
    """`pvewatch run` with `http` as its http section; yields its config file once the
    probe finds it healthy."""
    (tmp / "pw").write_text(PASSWORD + "\n")
    config = write_config(tmp, [cluster_entry("lab", sim, token=TOKEN)], {}, http=http)
    log = (tmp / "daemon.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pvewatch", "run", "-c", str(config)],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        wait_for(lambda: health(config, env)[0] == 0 or proc.poll() is not None, timeout=60)
        assert proc.poll() is None, (tmp / "daemon.log").read_text()
        yield config
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()


def variant(config: Path, name: str, **http: object) -> Path:
    """A copy of `config` whose http section has `http` merged in (None removes a key)."""
    doc = json.loads(config.read_text())
    merged = {k: v for k, v in (doc["http"] | http).items() if v is not None}
    path = config.with_name(name)
    path.write_text(json.dumps(doc | {"http": merged}))
    return path


def tls_files(tmp: Path, name: str) -> dict[str, str]:
    pair = make_self_signed(name)
    (tmp / f"{name}.crt").write_bytes(pair.cert_pem)
    (tmp / f"{name}.key").write_bytes(pair.key_pem)
    return {"cert_file": str(tmp / f"{name}.crt"), "key_file": str(tmp / f"{name}.key")}


def test_plain_listener_from_the_listen_address_the_environment_gives(
    tmp_path: Path, sim: SimServer
) -> None:
    env = {"PVEWATCH_LISTEN": f"127.0.0.1:{free_port()}"}
    http = {"listen": "${PVEWATCH_LISTEN:-127.0.0.1:9886}"}
    with daemon(tmp_path, sim, http, env) as config:
        code, line = health(config, env)
        assert code == 0
        assert line.startswith(f"ok: http://{env['PVEWATCH_LISTEN']}/healthz answered 200")
        assert "event_loop" in line
    code, line = health(config, env)
    assert code == 1
    assert "connection refused" in line


def test_basic_auth(tmp_path: Path, sim: SimServer) -> None:
    http = {
        "listen": f"127.0.0.1:{free_port()}",
        "basic_auth_users": {"prometheus": HASH},
        "health_check": {"user": "prometheus", "password_file": str(tmp_path / "pw")},
    }
    with daemon(tmp_path, sim, http) as config:
        assert health(config)[0] == 0
        code, line = health(variant(config, "no-creds.yaml", health_check=None))
        assert code == 1
        assert "wants basic auth: set http.health_check" in line
        (tmp_path / "wrong").write_text("not-the-password")
        wrong = {"user": "prometheus", "password_file": str(tmp_path / "wrong")}
        code, line = health(variant(config, "wrong.yaml", health_check=wrong))
        assert code == 1
        assert "refused http.health_check.user 'prometheus'" in line


def test_tls_accepts_exactly_the_configured_certificate(tmp_path: Path, sim: SimServer) -> None:
    http = {"listen": f"127.0.0.1:{free_port()}", "tls_server_config": tls_files(tmp_path, "a")}
    with daemon(tmp_path, sim, http) as config:
        code, line = health(config)
        assert code == 0
        assert line.startswith("ok: https://127.0.0.1:")
        # A certificate the listener does not serve (as after a renewal not yet reloaded).
        other = variant(config, "other.yaml", tls_server_config=tls_files(tmp_path, "b"))
        code, line = health(other)
        assert code == 1
        assert "serves a certificate other than" in line
        code, line = health(variant(config, "plain.yaml", tls_server_config=None))
        assert code == 1


def test_tls_with_client_certificates_and_basic_auth(tmp_path: Path, sim: SimServer) -> None:
    client = tls_files(tmp_path, "probe")
    http = {
        "listen": f"127.0.0.1:{free_port()}",
        "tls_server_config": tls_files(tmp_path, "server")
        | {"client_ca_file": client["cert_file"], "client_auth_type": "RequireAndVerifyClientCert"},
        "basic_auth_users": {"prometheus": HASH},
        "health_check": {"user": "prometheus", "password_file": str(tmp_path / "pw")} | client,
    }
    with daemon(tmp_path, sim, http) as config:
        assert health(config)[0] == 0
        anonymous = {"user": "prometheus", "password_file": str(tmp_path / "pw")}
        code, line = health(variant(config, "anonymous.yaml", health_check=anonymous))
        assert code == 1
        assert "set http.health_check.cert_file" in line


def test_a_bad_config_is_unhealthy_in_one_line_and_other_sections_do_not_matter(
    tmp_path: Path,
) -> None:
    config = tmp_path / "watch.yaml"
    # The cluster's token file is gone: the daemon would refuse to start, the probe does not
    # care (it probes the daemon that runs), and says nothing listens.
    port = free_port()
    config.write_text(
        "clusters: [{name: a, endpoints: ['https://x:8006'], token_file: /nonexistent}]\n"
        f"http: {{listen: '127.0.0.1:{port}'}}\n"
    )
    code, line = health(config)
    assert (code, line) == (1, f"unhealthy: http://127.0.0.1:{port}/healthz: connection "
                                "refused (is pvewatch running?)")  # fmt: skip
    config.write_text("http: {listen: 'nowhere', health_check: {user: x}}\n")
    code, line = health(config)
    assert code == 1
    assert line.startswith(f"unhealthy: config {config}: http.")
    assert line.endswith("(and 1 more)")
    code, line = health(tmp_path / "missing.yaml")
    assert code == 1
    assert line.startswith("unhealthy: config")


def test_listener_off_is_unhealthy(tmp_path: Path) -> None:
    config = tmp_path / "watch.yaml"
    config.write_text("http: {listen: ''}\n")
    assert health(config) == (1, "unhealthy: http.listen is off: there is no /healthz to probe")


@pytest.mark.parametrize(
    ("listen", "address"),
    [
        ("0.0.0.0:9886", ("127.0.0.1", 9886)),
        ("[::]:9886", ("::1", 9886)),
        ("127.0.0.1:9001", ("127.0.0.1", 9001)),
        ("10.1.2.3:9886", ("10.1.2.3", 9886)),  # bound to one address: only it answers
        ("[::1]:9886", ("::1", 9886)),
        ("localhost:9886", ("localhost", 9886)),
    ],
)
def test_probe_address(listen: str, address: tuple[str, int]) -> None:
    assert probe_address(HttpConfig(listen=listen)) == address
