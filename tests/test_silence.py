"""The silence syntax: `key=glob` pairs, and what is wrong with a bad one."""

from __future__ import annotations

import pytest

from pvewatch.silence import Matcher, parse_match


@pytest.mark.parametrize(
    ("text", "matchers"),
    [
        ("cluster=lab", (Matcher("cluster", "lab"),)),
        (
            "cluster=lab,resource=qemu/100,type=guest.*",
            (
                Matcher("cluster", "lab"),
                Matcher("resource", "qemu/100"),
                Matcher("type", "guest.*"),
            ),
        ),
        (
            " node = pve1 , type!=node.* ",
            (Matcher("node", "pve1"), Matcher("type", "node.*", True)),
        ),
        ("tag=prod", (Matcher("tag", "prod"),)),
    ],
)
def test_parse_match(text: str, matchers: tuple[Matcher, ...]) -> None:
    assert parse_match(text) == matchers
    assert parse_match(",".join(str(m) for m in matchers)) == matchers


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "expected KEY=GLOB"),
        ("cluster", "expected KEY=GLOB"),
        ("cluster=", "expected KEY=GLOB"),
        ("colour=red", "unknown key 'colour'"),
        ("type!=guest.*", "at least one KEY=GLOB"),
        ("cluster=lab,,type=x", "expected KEY=GLOB"),
    ],
)
def test_parse_match_says_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match="--match: ") as caught:
        parse_match(text)
    assert problem in str(caught.value)
