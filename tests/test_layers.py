"""The shape of the package: the pure core imports no I/O library, a layer never imports
one above it, no import hides behind TYPE_CHECKING, and a module over 350 lines says why.

The import graph is read from the source (every `import`, at module level or inside a
function), so an import deferred into a function still counts. A small AST walk does
this; import-linter would need a configuration language and a dependency of its own for
the same ~20 lines, and it cannot check the other rules here.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pvewatch"

# The libraries that do I/O (or drag it in): none may load with the pure core.
IO_LIBRARIES = (
    "httpx",
    "httpcore",
    "sqlite3",
    "psycopg",
    "msgspec",
    "jinja2",
    "aiohttp",
    "bcrypt",
    "apscheduler",
    "prometheus_client",
    "aiosmtplib",
)
PURE = (
    "pvewatch.model",
    "pvewatch.errors",
    "pvewatch.secret",
    "pvewatch.upid",
    "pvewatch.routing",
    "pvewatch.silence",
    "pvewatch.duplicates",
    "pvewatch.config",
    "pvewatch.watch",
    "pvewatch.sinks.formats",
)

# From the ground up: a module imports only from its own layer or the layers below it.
# Within a layer the packages are independent of each other (the first layer is single
# modules that may use each other).
LAYERS: tuple[tuple[str, ...], ...] = (
    (
        *("pvewatch", "pvewatch.errors", "pvewatch.secret", "pvewatch.model"),
        *("pvewatch.upid", "pvewatch.routing", "pvewatch.silence", "pvewatch.duplicates"),
    ),
    ("pvewatch.config",),
    ("pvewatch.watch", "pvewatch.sinks.formats"),
    ("pvewatch.net",),
    ("pvewatch.pve", "pvewatch.store"),
    ("pvewatch.sinks",),
    ("pvewatch.observability",),
    ("pvewatch.deliver", "pvewatch.pipeline", "pvewatch.checking", "pvewatch.http"),
    ("pvewatch.lifecycle",),
    ("pvewatch.commands",),
    ("pvewatch.operate",),
    ("pvewatch.cli",),
    ("pvewatch.__main__",),
)
# The simulator stands apart (it is a PVE, not a part of pvewatch): it imports only the
# ground, and only the operator's commands (`demo`, `simulate`) import it.
SIMULATOR = "pvewatch.simulator"
SIMULATOR_USERS = ("pvewatch.operate.",)

LONG = 350
# Modules longer than LONG lines, each with a paragraph "Over 350 lines: why." in its
# docstring. A module that grows past LONG joins this list with its reason, or is split.
JUSTIFIED_LONG = {
    "pvewatch/commands.py",
    "pvewatch/config/reading.py",
    "pvewatch/deliver/deliverer.py",
    "pvewatch/model.py",
    "pvewatch/observability/metrics.py",
    "pvewatch/pve/client.py",
    "pvewatch/store/postgres.py",
    "pvewatch/store/sqlite.py",
}
# The simulator is being extended elsewhere at the time of writing; it keeps its own
# TYPE_CHECKING import and long module until that lands.
NOT_CHECKED = ("pvewatch/simulator/",)


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def imported(path: Path) -> set[str]:
    """Every pvewatch module `path` imports, wherever the import statement is."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {name for name in found if name == "pvewatch" or name.startswith("pvewatch.")}


def layer_of(name: str) -> tuple[int, str] | None:
    """The layer of a module and the entry of LAYERS it falls under."""
    best: tuple[int, str] | None = None
    for index, entries in enumerate(LAYERS):
        for entry in entries:
            hit = name == entry or (entry != "pvewatch" and name.startswith(entry + "."))
            if hit and (best is None or len(entry) > len(best[1])):
                best = (index, entry)
    return best


def real_modules() -> set[str]:
    return {name for name, _ in modules()}


def test_importing_the_pure_core_loads_no_io_library() -> None:
    # In a fresh interpreter: this one has imported everything already.
    pure = sorted(n for n in real_modules() if any(n == p or n.startswith(p + ".") for p in PURE))
    code = (
        "import importlib, json, sys\n"
        f"for name in {pure!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in {IO_LIBRARIES!r} if m in sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    assert len(pure) > 40  # the walk found the core (watch, config, formats, the ground)


def test_every_module_is_in_a_layer() -> None:
    missing = [n for n in real_modules() if not n.startswith(SIMULATOR) and layer_of(n) is None]
    assert missing == []


@pytest.mark.parametrize(("name", "path"), list(modules()), ids=lambda x: str(x))
def test_no_module_imports_a_layer_above_it_or_a_sibling(name: str, path: Path) -> None:
    known = real_modules()
    targets = {t for t in imported(path) if t in known}  # `from pkg import name` → pkg
    if name.startswith(SIMULATOR):
        outside = {t for t in targets if not t.startswith(SIMULATOR)}
        assert {layer_of(t) for t in outside} <= {(0, e) for e in LAYERS[0]}, outside
        return
    mine = layer_of(name)
    assert mine is not None
    wrong = []
    for target in sorted(targets):
        theirs = layer_of(target)
        if theirs is None:  # the simulator
            if not name.startswith(SIMULATOR_USERS):
                wrong.append(f"{target} (the simulator)")
        elif theirs[0] > mine[0]:
            wrong.append(f"{target} (layer {theirs[0]} > {mine[0]})")
        elif theirs[0] == mine[0] > 0 and theirs[1] != mine[1]:
            wrong.append(f"{target} (a sibling in layer {mine[0]})")
    assert wrong == [], f"{name} imports upward or sideways: {wrong}"


def _checked(path: Path) -> bool:
    relative = path.relative_to(PACKAGE.parent).as_posix()
    return not relative.startswith(NOT_CHECKED)


def test_no_import_hides_behind_type_checking() -> None:
    hiding = []
    for _, path in modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                hiding.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert [h for h in hiding if not h.startswith(NOT_CHECKED)] == []


def test_a_long_module_says_why_in_its_docstring() -> None:
    long: set[str] = set()
    for _, path in modules():
        relative = path.relative_to(PACKAGE.parent).as_posix()
        if not _checked(path) or len(path.read_text().splitlines()) <= LONG:
            continue
        long.add(relative)
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        reasons = [p for p in doc.split("\n\n") if p.startswith(f"Over {LONG} lines: ")]
        assert len(reasons) == 1, f"{relative}: no paragraph 'Over {LONG} lines: why'"
    assert long == JUSTIFIED_LONG
