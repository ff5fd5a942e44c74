"""Reading the Prometheus text exposition in tests, and promtool (tests.need: a skip where
it is not installed, a failure under CI=true)."""

from __future__ import annotations

import re
import subprocess
from typing import NamedTuple

import httpx

from tests.need import tool

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Sample(NamedTuple):
    name: str
    labels: dict[str, str]
    value: float


def parse(text: str) -> list[Sample]:
    """Every sample line of a text exposition (comments skipped)."""
    samples = []
    for line in text.split("\n"):  # not splitlines: label values may hold \x1e, \r, ...
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        assert m, f"not an exposition line: {line!r}"
        name, labels, value = m.groups()
        pairs = _LABEL.findall(labels or "")
        samples.append(Sample(name, {k: _unescape(v) for k, v in pairs}, float(value)))
    return samples


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def select(samples: list[Sample], name: str, **labels: str) -> list[Sample]:
    return [
        s
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    (found,) = select(samples, name, **labels)
    return found.value


def families(text: str) -> set[str]:
    """The metric family names declared by `# TYPE` lines."""
    return set(re.findall(r"^# TYPE (\S+) ", text, flags=re.MULTILINE))


def promtool() -> str:
    """promtool's path, or the test ends here (tests.need)."""
    return tool("promtool")


def promtool_check_metrics(text: str) -> str:
    """What `promtool check metrics` says about `text`: "" when it finds nothing."""
    done = subprocess.run(
        [promtool(), "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    return (done.stdout + done.stderr).strip() if done.returncode else ""


def answered(client: httpx.Client, path: str, status: int) -> httpx.Response | None:
    """The answer to GET `path` if it has `status` (for wait_for)."""
    answer = client.get(path)
    return answer if answer.status_code == status else None
