"""The session's engine, base image and built image, and their clean-up: every container
and volume labelled as the tests', the images they made, and the private dockerd with all
its state. Figures (build time, image size) are printed at the end of the run."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.image.base import base_image
from tests.image.engine import find_engine, unavailable
from tests.image.support import Built, Simulator

REPO = Path(__file__).resolve().parents[2]
IMAGE = "pvewatch:image-test"
FIGURES: dict[str, str] = {}


@pytest.fixture(scope="session")
def built() -> Iterator[Built]:
    started = time.monotonic()
    if os.geteuid() != 0:  # the tests chown files to uid 10001, as the docs tell users to
        unavailable("the image tests run as root")
    engine, daemon = find_engine()
    FIGURES["engine"] = "a private dockerd" if daemon else "the running engine"
    before = engine.image_ids()
    try:
        at = time.monotonic()
        base, how = base_image(engine)
        FIGURES["base image"] = f"{base}, {how} in {time.monotonic() - at:.0f} s"
        at = time.monotonic()
        # The classic builder: Debian's engine has no buildx; the Dockerfile needs neither.
        engine.env["DOCKER_BUILDKIT"] = "0"
        engine.run("build", "--network", "host", "--build-arg", f"BASE={base}",
                   "--tag", IMAGE, str(REPO), timeout=900)  # fmt: skip
        FIGURES["image build (cold)"] = f"{time.monotonic() - at:.1f} s"
        size = int(engine.out("image", "inspect", "--format", "{{.Size}}", IMAGE))
        base_size = int(engine.out("image", "inspect", "--format", "{{.Size}}", base))
        FIGURES["image size"] = (
            f"{size / 1e6:.0f} MB ({(size - base_size) / 1e6:.1f} MB above the base)"
        )
        yield Built(engine, IMAGE, base)
    finally:
        engine.remove_made(before)
        if daemon is not None:
            daemon.close()
        FIGURES["whole run"] = f"{time.monotonic() - started:.0f} s"


@pytest.fixture(scope="session")
def sim(built: Built) -> Simulator:
    return Simulator(built)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("image figures")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")
    if os.environ.get("CI") == "true" and not FIGURES:
        terminalreporter.write_line("image tests: nothing measured")
