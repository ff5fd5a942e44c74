"""Shared by the config tests: a minimal valid document and ways to load variations of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pvewatch.config.load import load_config
from pvewatch.config.types import Config
from pvewatch.errors import ConfigError
from pvewatch.simulator.certs import make_self_signed
from pvewatch.sinks.table import SINK_TYPES

REPO = Path(__file__).resolve().parents[2]
TOKEN = "pvewatch@pve!monitor=8a1e0c2d-SECRET-VALUE"
FP = ":".join(["AB"] * 32)
SECRET = "TOPSECRET-4711"


def base() -> dict[str, Any]:
    return {
        "clusters": [
            {"name": "lab", "endpoints": ["https://pve1.example:8006"], "token": TOKEN},
        ]
    }


def with_cluster(**overrides: Any) -> dict[str, Any]:
    doc = base()
    doc["clusters"][0].update(overrides)
    return doc


def without(doc: dict[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        del doc["clusters"][0][key]
    return doc


def write(tmp_path: Path, doc: object, name: str = "watch.yaml") -> Path:
    """`doc` as `name`, readable by its owner only, as a config holding a token should be
    (test_load checks the warning for a file others can read)."""
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc), encoding="utf-8")
    path.chmod(0o600)
    return path


def load(tmp_path: Path, doc: object, env: dict[str, str] | None = None) -> Config:
    return load_config(write(tmp_path, doc), env or {}, sink_types=SINK_TYPES)


def problems(tmp_path: Path, doc: object, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, doc, env)
    return info.value.problems


def assert_reported(tmp_path: Path, doc: object, expected: str) -> None:
    """Loading `doc` fails, and one of the problems starts with `expected`."""
    found = problems(tmp_path, doc)
    assert any(p.startswith(expected) for p in found), found


def ca_pem(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_bytes(make_self_signed().cert_pem)
    return path


def commented_sink(name: str) -> str:
    """The sink `name` of watch.yaml.example's commented examples, uncommented: the lines
    under `sinks:` from `  # NAME:` to the end of its block."""
    lines = (REPO / "watch.yaml.example").read_text().splitlines()
    start = lines.index(f"  # {name}:")
    block: list[str] = []
    for line in lines[start:]:
        if not line.startswith("  # ") or (block and not line.startswith("  #   ")):
            break
        block.append("  " + line[4:])
    return "\n".join(block) + "\n"
