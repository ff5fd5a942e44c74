"""Bad input never crashes pvewatch: a corpus of broken configs (each a key-path error and
exit 2, never a traceback), and generated input for the parsers and the pure pipeline:
mutated configs, arbitrary YAML, UPIDs, arbitrary /cluster/resources rows carried through
the plausibility check, normalize, diff and every webhook format. Row-shape properties of
normalize/diff alone: tests/watch/test_properties.py; formats alone: tests/sinks/."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvewatch.cli import main
from pvewatch.config.load import load_config
from pvewatch.errors import ConfigError
from pvewatch.model import Event
from pvewatch.sinks.formats.base import FormatOptions
from pvewatch.sinks.formats.table import FORMATS
from pvewatch.sinks.log import format_json, format_text
from pvewatch.sinks.table import SINK_TYPES
from pvewatch.upid import parse_upid
from pvewatch.watch.diff import diff
from pvewatch.watch.normalize import carry_forward, implausible, normalize
from tests.faults.figures import Figures
from tests.watch.rows import NOW, node, storage, vm

CORPUS = Path(__file__).parent / "corpus" / "configs"
EXPECTED: dict[str, str] = json.loads((CORPUS / "expected.json").read_text())
CANARIES = ("canary-secret-in-a-broken-token-8c1d", "canary-secret-password-in-config-55aa")
ENV = {"HOME": "/nonexistent"}  # no variable of the corpus is defined


def test_the_corpus_and_its_expectations_match() -> None:
    assert sorted(p.name for p in CORPUS.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_broken_config_is_a_key_path_error_and_exit_2(
    name: str, figures: Figures, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PVEWATCH_FAULTS_NEVER_DEFINED", raising=False)
    assert main(["check-config", "-c", str(CORPUS / name)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert EXPECTED[name] in err
    assert "Traceback" not in err
    assert "internal error" not in err
    for line in err.splitlines()[1:]:  # every problem starts with where it is
        assert line.startswith("  "), line
        assert ": " in line, line
    assert not any(canary in err for canary in CANARIES)
    figures.add("inputs_fuzzed")


def test_the_command_itself_prints_no_traceback() -> None:
    names = ["binary.yaml", "recursive-alias.yaml", "every-problem-at-once.yaml"]
    for name in names:
        done = subprocess.run(
            [sys.executable, "-m", "pvewatch", "check-config", "-c", str(CORPUS / name)],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        assert EXPECTED[name] in done.stderr


# --- generated configs ----------------------------------------------------------------

VALID: dict[str, Any] = {
    "clusters": [
        {
            "name": "lab",
            "endpoints": ["https://pve1.example:8006"],
            "token": "pvewatch@pve!fuzz=0b2c7a9e",
            "tls": {"fingerprint": ":".join(["AB"] * 32)},
            "interval_secs": 10,
        }
    ],
    "store": {"path": "state.db", "retention_days": 30},
    "http": {"listen": "127.0.0.1:9886"},
    "sinks": {"console": {"type": "log", "format": "text"}},
}
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["${X}", "${X:-y}", "$$", "${", "../../etc/passwd", "-", "0", ""]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated_configs(draw: st.DrawFn) -> Any:
    doc = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc)))
        value = draw(json_values)
        if not path:
            return value
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        if isinstance(parent, dict) and draw(st.booleans()):
            parent[draw(st.text(max_size=10))] = value  # a key nobody expects
        else:
            parent[path[-1]] = value
    return doc


def _load(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "watch.yaml")
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        problems = []
        try:
            load_config(path, ENV, sink_types=SINK_TYPES)
        except ConfigError as e:
            problems = e.problems or ["(no problem listed)"]
        assert all(": " in p for p in problems), problems


@given(doc=mutated_configs())
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_a_mutated_config_loads_or_lists_its_problems(doc: Any, figures: Figures) -> None:
    _load(json.dumps(doc))
    figures.add("inputs_fuzzed")


@given(text=st.text(alphabet=st.sampled_from(list("ab:-[]{}&*!|>'\"#%@`\n\t ,?01.~$"))))
def test_any_yaml_text_loads_or_lists_its_problems(text: str, figures: Figures) -> None:
    _load(text)
    figures.add("inputs_fuzzed")


# --- UPIDs ----------------------------------------------------------------------------

upid_like = st.from_regex(
    r"UPID:[a-z0-9-]{0,6}:[0-9A-Fa-f]{0,9}:[0-9A-Fa-f]{0,10}:[0-9A-Fa-f]{0,9}"
    r":[a-z]{0,8}:[0-9]{0,4}:[a-z@!.]{0,12}:?",
    fullmatch=True,
)


@given(text=st.text() | upid_like)
def test_any_text_is_a_upid_or_a_value_error(text: str, figures: Figures) -> None:
    try:
        parsed = [parse_upid(text)]
    except ValueError as e:
        parsed, error = [], str(e)
        assert "UPID" in error
    for upid in parsed:
        assert upid.node
        assert upid.type
        assert upid.user
    figures.add("inputs_fuzzed")


# --- rows through the pure pipeline into every format ---------------------------------

any_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
fields = st.sampled_from(["id", "type", "status", "node", "name", "vmid", "tags", "pool", "lock"])
real_rows = st.sampled_from([vm(100), vm(101, status="stopped"), node("pve1"), storage()])
rows = st.lists(
    real_rows.flatmap(
        lambda row: st.dictionaries(fields | st.text(max_size=6), any_value, max_size=3).map(
            lambda changes: row | changes
        )
    )
    | any_value,
    max_size=6,
)
FORMATTERS = [
    build("fuzz", FormatOptions(name, template="{{ events | length }}"))
    for name, build in FORMATS.items()
]


@given(first=rows, second=rows)
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_any_rows_go_through_the_pipeline_and_every_format(
    first: list[Any], second: list[Any], figures: Figures
) -> None:
    old = normalize("fuzz", first, NOW)
    events: list[Event] = []
    if implausible(old, second) is None:
        new = carry_forward(old, normalize("fuzz", second, NOW))
        events = diff(old, new, NOW)
    for event in events:
        assert "\n" not in format_text(event)
        assert json.loads(format_json(event))["id"] == event.id
    for formatter in FORMATTERS:
        for payload in formatter.render(events) if events else []:
            assert isinstance(payload.body, bytes)
    figures.add("inputs_fuzzed")
