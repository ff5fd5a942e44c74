"""The docs tell the truth: README.md and docs/*.md link only to what exists (files and
GitHub anchors), their config examples load with pvewatch's own loader, the event reference
and the event example match the code's catalogue, and the README stays a short front door.

A YAML block in the docs is a complete config unless the line before its fence says
otherwise, in an HTML comment (invisible on GitHub):
- `<!-- fragment -->`: top-level sections of a config without `clusters:`; it loads with a
  stub cluster added.
- `<!-- fragment: KEY -->`: what goes under the top-level KEY (e.g. entries of `sinks:`).
- `<!-- not a pvewatch config: WHAT -->`: someone else's YAML (Prometheus rules, ...).

Checked elsewhere: the metric reference against the registry and its alerts with promtool
(tests/observability/test_metrics.py, tests/test_deploy.py), the signing receiver's code
(tests/sinks/test_signing.py).
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest

from pvewatch.config.load import load_config
from pvewatch.errors import ConfigError
from pvewatch.model import EVENT_TYPES, Event
from pvewatch.sinks.table import SINK_TYPES

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
README_MAX_BYTES = 12 * 1024

_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([^`\s]*).*$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_MARKER = re.compile(r"^<!--\s*(.*?)\s*-->$")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
_LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_EXTERNAL = ("http://", "https://", "mailto:")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    body: str
    marker: str | None  # the HTML comment on the line before the fence, if any

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


@dataclass(frozen=True)
class Page:
    prose: str  # the text outside fenced code blocks
    blocks: tuple[Block, ...]


def parse(page: Path) -> Page:
    """Split a Markdown file into its prose and its fenced code blocks."""
    prose: list[str] = []
    blocks: list[Block] = []
    lines = page.read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            prose.append(lines[i])
            i += 1
            continue
        indent, fence, lang = opening.groups()
        marker = _MARKER.match(prose[-1].strip()) if prose else None
        body: list[str] = []
        start, i = i + 1, i + 1
        while i < len(lines) and not re.fullmatch(rf"\s*{fence[0]}{{{len(fence)},}}\s*", lines[i]):
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        assert i < len(lines), f"{page.name}:{start}: a code fence that is never closed"
        i += 1
        text = "\n".join(body) + "\n"
        blocks.append(Block(page, start, lang, text, marker.group(1) if marker else None))
        prose.append("")
    return Page("\n".join(prose), tuple(blocks))


def github_anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the headings of a page: the heading's text, lower-cased,
    without punctuation other than `-` and `_`, spaces made `-`; repeats get -1, -2, ..."""
    seen: dict[str, int] = {}
    anchors: set[str] = set()
    for line in parse(page).prose.splitlines():
        heading = _HEADING.match(line)
        if not heading:
            continue
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.group(2))  # a link's text
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def links(page: Path) -> list[str]:
    prose = _CODE_SPAN.sub("code", parse(page).prose)
    return [unquote(target) for target in _LINK.findall(prose)]


def _relative_links() -> list[tuple[Path, str]]:
    return [(p, t) for p in PAGES for t in sorted(set(links(p))) if not t.startswith(_EXTERNAL)]


@pytest.mark.parametrize(
    ("page", "target"),
    _relative_links(),
    ids=lambda x: x.name if isinstance(x, Path) else x,
)
def test_every_relative_link_resolves_to_a_file_and_heading(page: Path, target: str) -> None:
    path, _, anchor = target.partition("#")
    file = (page.parent / path).resolve() if path else page
    assert file.exists(), f"{page.name}: {target}: no {file}"
    if anchor:
        assert file.suffix == ".md", f"{page.name}: {target}: an anchor into a non-Markdown file"
        assert anchor in github_anchors(file), (
            f"{page.name}: {target}: {file.name} has no heading #{anchor}; it has "
            f"{sorted(github_anchors(file))}"
        )


def test_the_link_checker_sees_the_links_and_anchors_it_checks() -> None:
    # Guards the parser above: a checker that finds no link passes everything.
    assert "docs/events.md" in links(README)
    assert "1-the-proxmox-token" in github_anchors(DOCS / "install.md")
    assert len(_relative_links()) > 50


def test_the_readme_leads_to_the_docker_image_and_its_figures() -> None:
    assert "docs/install.md#5-docker" in links(README)
    docker = (DOCS / "install.md").read_text().split("\n## 5. Docker\n", 1)[1]
    assert "| image build, cold (`--no-cache`) |" in docker.split("\n## ", 1)[0]


def test_every_page_in_docs_is_reachable_from_the_readme() -> None:
    reached, todo = set(), [README]
    while todo:
        page = todo.pop()
        for target in links(page):
            path = target.partition("#")[0]
            if target.startswith(_EXTERNAL) or not path.endswith(".md"):
                continue
            file = (page.parent / path).resolve()
            if file.exists() and file not in reached:
                reached.add(file)
                todo.append(file)
    assert set(PAGES) - {README} <= reached, sorted(p.name for p in set(PAGES) - reached - {README})


# ---------------------------------------------------------------- config examples

# The ${VAR}s the examples use, as a shell would set them.
DOC_ENV = {
    "HOOK_URL": "https://hooks.example.net/pve/T0KEN",
    "HOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "PVE_TOKEN": "pvewatch@pve!monitor=8a1e0c2d-3f4d-4c1e-9a8b-7d6e5f4a3b2c",
}
STUB_CLUSTER = """\
clusters:
  - name: docs
    endpoints: ["https://pve.example.com:8006"]
    token: "pvewatch@pve!docs=00000000-0000-0000-0000-000000000000"
"""
# The files an example names (a CA, a token file, a certificate) are not on this machine:
# those problems alone are forgiven, every other one fails the example.
_MISSING_FILE = re.compile(r"cannot read .*: No such file or directory$")


def yaml_blocks() -> list[Block]:
    return [b for p in PAGES for b in parse(p).blocks if b.lang in ("yaml", "yml")]


def config_text(block: Block) -> str | None:
    """The config the block is (or belongs to), None for someone else's YAML."""
    marker = block.marker or ""
    if marker.startswith("not a pvewatch config:"):
        assert marker.split(":", 1)[1].strip(), f"{block.where}: say what it is"
        return None
    if marker == "fragment":
        assert not re.search(r"^clusters:", block.body, re.MULTILINE), block.where
        return STUB_CLUSTER + block.body
    if marker.startswith("fragment:"):
        key = marker.split(":", 1)[1].strip()
        nested = f"{key}:\n" + textwrap.indent(textwrap.dedent(block.body), "  ")
        return nested if key == "clusters" else STUB_CLUSTER + nested
    assert not marker, f"{block.where}: unknown marker <!-- {marker} -->"
    assert re.search(r"^clusters:", block.body, re.MULTILINE), (
        f"{block.where}: a YAML block without clusters: mark it <!-- fragment -->, "
        "<!-- fragment: KEY --> or <!-- not a pvewatch config: WHAT -->"
    )
    return block.body


@pytest.mark.parametrize("block", yaml_blocks(), ids=lambda b: b.where)
def test_every_config_example_loads(block: Block, tmp_path: Path) -> None:
    text = config_text(block)
    if text is None:
        return
    path = tmp_path / "watch.yaml"
    path.write_text(text)
    path.chmod(0o600)
    # As under systemd: a cluster without credentials reads $CREDENTIALS_DIRECTORY/NAME.token.
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    for name in re.findall(r"^\s*- name: (\S+)", text, flags=re.MULTILINE):
        (credentials / f"{name}.token").write_text(f"pvewatch@pve!{name}=0123-abcd\n")
    try:
        load_config(
            path, {**DOC_ENV, "CREDENTIALS_DIRECTORY": str(credentials)}, sink_types=SINK_TYPES
        )
    except ConfigError as e:
        problems = [p for p in e.problems if not _MISSING_FILE.search(p)]
        assert not problems, f"{block.where}:\n{text}\n" + "\n".join(problems)


def test_the_docs_have_config_examples_of_each_kind() -> None:
    markers = [b.marker or "complete" for b in yaml_blocks()]
    assert "complete" in markers
    assert "fragment" in markers
    assert any(m.startswith("fragment:") for m in markers)


def test_a_wrong_example_would_fail(tmp_path: Path) -> None:
    # Guards the loader check above: a misspelt key is not forgiven like a missing file.
    bad = Block(README, 1, "yaml", "sinks:\n  x: {type: log, fromat: text}\n", "fragment")
    path = tmp_path / "watch.yaml"
    path.write_text(config_text(bad) or "")
    with pytest.raises(ConfigError) as e:
        load_config(path, DOC_ENV, sink_types=SINK_TYPES)
    assert not any(_MISSING_FILE.search(p) for p in e.value.problems)


# ---------------------------------------------------------------- events

EVENTS = DOCS / "events.md"


def _reference_rows() -> dict[str, tuple[str, str]]:
    text = EVENTS.read_text()
    section = text.split("\n## Event reference\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_.]+)` \| (\w+) \| (.*) \|$", section, flags=re.MULTILINE)
    names = [name for name, _, _ in rows]
    assert len(names) == len(set(names)), "an event type is listed twice"
    return {name: (severity, meaning) for name, severity, meaning in rows}


def test_the_event_reference_lists_every_event_type_with_its_severity_and_meaning() -> None:
    documented = _reference_rows()
    expected = {n: (t.severity.value, t.description) for n, t in EVENT_TYPES.items()}
    assert documented == expected


def _event_example(page: Path) -> dict[str, object]:
    block = next(b for b in parse(page).blocks if b.lang == "json")
    example = json.loads(block.body)
    assert isinstance(example, dict)
    return example


def test_the_event_example_is_the_shape_pvewatch_sends() -> None:
    example = _event_example(README)
    assert _event_example(EVENTS) == example, "README and docs/events.md show other events"
    assert Event.from_dict(example).to_dict() == example
    assert list(Event.from_dict(example).to_dict()) == list(example), "another key order"


# ---------------------------------------------------------------- the front door


def test_readme_is_a_short_front_door_with_the_two_commands() -> None:
    text = README.read_text()
    assert len(text.encode()) < README_MAX_BYTES, "the reference belongs in docs/"
    assert "make demo" in text
    assert "make test" in text
