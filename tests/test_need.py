"""tests/need.py: a missing component skips a test locally and fails it under CI=true."""

from __future__ import annotations

import sys

import pytest

from tests.need import need, tool


@pytest.mark.parametrize("ci", ["true", "TRUE", "1", "yes"])
def test_under_ci_a_missing_component_fails_the_test(
    monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="CI=true and this test cannot run: no db"):
        need("no db")


@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_elsewhere_it_skips_saying_why(monkeypatch: pytest.MonkeyPatch, ci: str | None) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="no db"):
        need("no db")


def test_a_missing_tool_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(pytest.fail.Exception, match=r"promtool is not installed \(apt-get"):
        tool("promtool")
    assert tool("python").startswith(sys.prefix)  # the virtualenv comes first
