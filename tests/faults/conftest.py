"""The faults suite: fast by default (part of `make test`), longer with `--soak` or
`PVEWATCH_SOAK=1` (`make soak`: more kills, outages, polls and generated inputs). Tests
add their figures to the `figures` fixture; the session writes them to
`.faults-report.json` (see figures.py), `make faults-report` prints them."""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.faults.figures import Figures

_FIGURES = pytest.StashKey[Figures]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak", action="store_true", help="faults suite: many more iterations (minutes)"
    )


def pytest_configure(config: pytest.Config) -> None:
    soak = bool(config.getoption("soak", False)) or os.environ.get("PVEWATCH_SOAK") == "1"
    config.stash[_FIGURES] = Figures(soak=soak)
    if soak:  # twenty times the generated inputs of a normal run
        settings.register_profile("pvewatch-soak", max_examples=2000, deadline=None)
        settings.load_profile("pvewatch-soak")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # A hook in this conftest only sees the items of this directory.
    report = yield
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        item.config.stash[_FIGURES].outcome(report.outcome)
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    figures = session.config.stash.get(_FIGURES, None)
    if figures is None or not figures.outcomes:
        return  # no faults test ran: keep the last report
    root = session.config.rootpath
    target = Path(os.environ.get("PVEWATCH_FAULTS_REPORT") or root / ".faults-report.json")
    figures.write(target, root)


@pytest.fixture(scope="session")
def figures(pytestconfig: pytest.Config) -> Figures:
    return pytestconfig.stash[_FIGURES]


@pytest.fixture(scope="session")
def soak(figures: Figures) -> bool:
    return figures.soak
