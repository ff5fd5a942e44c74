"""pvewatch starts on a store it cannot use: a state directory that cannot be created,
or one mounted read-only. `pvewatch once` says what and where, exits 1, prints no
traceback; once the directory is writable again the change made meanwhile is reported."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pvewatch.config.types import StoreConfig
from pvewatch.errors import StoreError
from pvewatch.simulator.server import SimServer
from pvewatch.store.opening import open_store
from pvewatch.store.sqlite import SqliteStore
from tests.e2e.harness import TOKEN, simulator
from tests.faults.figures import Figures
from tests.faults.support import cluster_entry, mounted, run, start_guest, types, write_config

SINK = "events"


def _pvewatch(command: str, config: Path) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "pvewatch", command, "-c", str(config))


def _write_config(tmp: Path, sim: SimServer, store: Path) -> Path:
    cluster = cluster_entry("disk", sim, token=TOKEN)
    return write_config(tmp, [cluster], {}, store={"path": str(store)})


def test_a_store_that_cannot_be_created_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "not-a-directory").write_text("")
    with simulator() as sim:
        config = _write_config(tmp_path, sim, tmp_path / "not-a-directory" / "state.db")
        done = _pvewatch("once", config)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "cannot create its directory" in done.stderr
    assert str(tmp_path / "not-a-directory") in done.stderr


def test_a_read_only_state_directory_at_start_then_writable_again(
    tmp_path: Path, figures: Figures
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    with simulator() as sim:
        config = _write_config(tmp_path, sim, state / "state.db")
        assert _pvewatch("once", config).returncode == 0  # the baseline
        guest = start_guest(sim)
        with mounted(state, "--bind", "-o", "ro", str(state)):
            refused = _pvewatch("once", config)
        done = _pvewatch("once", config)
    assert refused.returncode == 1, refused.stderr
    assert "Traceback" not in refused.stderr
    assert str(state / "state.db") in refused.stderr
    assert done.returncode == 0, done.stderr
    with SqliteStore(state / "state.db") as store:
        events = store.events()
    assert types(events) == [("guest.started", guest)]
    assert events[0].detected_late
    figures.add("faults_injected")
    figures.add("events_checked", len(events))


@contextmanager
def another_user() -> Iterator[int]:
    """This process as uid/gid 10001 (the image's) when root, since root writes anywhere."""
    if os.geteuid() != 0:
        yield os.geteuid()
        return
    os.setegid(10001)
    os.seteuid(10001)
    try:
        yield 10001
    finally:
        os.seteuid(0)
        os.setegid(0)


def test_a_state_directory_of_another_user_names_the_uid_that_needs_it() -> None:
    """As a bind-mounted root-owned directory looks to the image's uid 10001."""
    with tempfile.TemporaryDirectory() as top:
        state = Path(top) / "state"
        state.mkdir()
        for folder in (Path(top), state):
            folder.chmod(0o555 if os.geteuid() != 0 else 0o755)
        with another_user() as uid, pytest.raises(StoreError) as info:
            open_store(StoreConfig(path=state / "state.db"))
        state.chmod(0o755)
        message = str(info.value)
    assert f"{state} is not writable by uid {uid}" in message
    assert f"give it to uid {uid}, e.g. `chown -R {uid}:" in message
