"""The base image the Dockerfile builds on: the real one when `docker pull` gets it, else a
stand-in made here with debootstrap.

THE STAND-IN IS A TEST DEVICE, NEVER PUBLISHED: Debian bookworm (Python 3.11, as the real
base) from this machine's own apt mirror, with this machine's extra CA certificates (so
that pip reaches PyPI through the same proxy the host uses), imported into the test's
engine under a name of its own and removed with it. It exists only so that the image can
be built and run where Docker Hub cannot be reached.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.image.engine import Engine, apt_install, unavailable

BASE = "python:3.11-slim-bookworm"  # the Dockerfile's ARG BASE
STAND_IN = "pvewatch-image-test-base:bookworm"
_PACKAGES = "python3,python3-venv,python-is-python3,ca-certificates"
_DEFAULT_MIRROR = "http://deb.debian.org/debian"


def base_image(engine: Engine) -> tuple[str, str]:
    """(the image to pass as BASE, how it was had)."""
    if engine.ok("image", "inspect", BASE, timeout=60):
        return BASE, "present"
    pulled = engine.run("pull", BASE, timeout=300, check=False)
    if pulled.returncode == 0:
        return BASE, "pulled"
    if shutil.which("debootstrap") is None:
        apt_install("debootstrap")
    _build_stand_in(engine)
    why = pulled.stderr.strip().splitlines()[-1:] or ["?"]
    return STAND_IN, f"stand-in (docker pull {BASE}: {why[0][:160]})"


def apt_mirror() -> str:
    """The Debian mirror this machine's apt uses (deb822 or one-line sources)."""
    sources = sorted(Path("/etc/apt").glob("sources.list.d/*.sources"))
    for file in sources:
        text = file.read_text(errors="replace")
        for stanza in text.split("\n\n"):
            if re.search(r"^Suites:.*\bbookworm\b", stanza, re.M):
                found = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
                if found and "security" not in found.group(1):
                    return found.group(1)
    lists = [Path("/etc/apt/sources.list"), *Path("/etc/apt").glob("sources.list.d/*.list")]
    for file in lists:
        if file.exists():
            found = re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s", file.read_text(), re.M)
            if found:
                return found.group(1)
    return _DEFAULT_MIRROR


def _build_stand_in(engine: Engine) -> None:
    root = Path(tempfile.mkdtemp(prefix="pvw-base-"))
    try:
        done = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={_PACKAGES}", "bookworm",
             str(root), apt_mirror()],
            capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            unavailable(f"debootstrap failed: {(done.stdout + done.stderr)[-800:]}")
        extra = sorted(Path("/usr/local/share/ca-certificates").glob("**/*.crt"))
        target = root / "usr/local/share/ca-certificates"
        target.mkdir(parents=True, exist_ok=True)
        for cert in extra:
            shutil.copy(cert, target / cert.name)
        subprocess.run(["chroot", str(root), "update-ca-certificates"], capture_output=True,
                       check=True, timeout=120)  # fmt: skip
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            shutil.rmtree(root / junk, ignore_errors=True)
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            ["docker", "import",
             "--change", 'LABEL description="pvewatch image-test stand-in base: a test device, '
                         'never published"',
             "--change", 'CMD ["python3"]', "-", STAND_IN],
            stdin=tar.stdout, env=engine.env, capture_output=True, text=True, timeout=300,
            check=False,
        )  # fmt: skip
        tar.wait(timeout=60)
        if imported.returncode != 0:
            raise AssertionError(f"docker import of the stand-in failed: {imported.stderr}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
