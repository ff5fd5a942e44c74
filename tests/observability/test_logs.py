"""pvewatch's own log: text and JSON lines, journald detection, the noisy libraries."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pvewatch.observability.logs import journald_adds_timestamps, setup_logging


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    noisy = {n: logging.getLogger(n).level for n in ("apscheduler", "httpx", "httpcore")}
    yield
    for h in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(h)
    root.setLevel(level)
    for name, lvl in noisy.items():
        logging.getLogger(name).setLevel(lvl)


def test_json_lines_carry_time_level_logger_message_and_extra_fields() -> None:
    out = io.StringIO()
    setup_logging("info", "json", {}, stream=out)
    logging.getLogger("pvewatch.test").warning(
        "cluster %s unreachable", "prod", extra={"cluster": "prod", "failures": 3}
    )
    logging.getLogger("pvewatch.test").debug("not at info")
    (line,) = out.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["time"].endswith("Z")
    assert "T" in entry["time"]
    assert {k: entry[k] for k in ("level", "logger", "message", "cluster", "failures")} == {
        "level": "warning",
        "logger": "pvewatch.test",
        "message": "cluster prod unreachable",
        "cluster": "prod",
        "failures": 3,
    }


def test_json_exception_is_one_line_with_the_traceback() -> None:
    out = io.StringIO()
    setup_logging("info", "json", {}, stream=out)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("pvewatch").exception("poll failed")
    (line,) = out.getvalue().splitlines()
    assert "RuntimeError: boom" in json.loads(line)["exception"]


def test_text_has_a_timestamp_outside_journald() -> None:
    out = io.StringIO()
    setup_logging("info", "text", {}, stream=out)
    logging.getLogger("pvewatch").info("hello")
    line = out.getvalue().strip()
    assert line.endswith("INFO pvewatch: hello")
    assert line[:4].isdigit()  # 2026-...


def test_text_has_no_timestamp_when_journald_stamps_the_stream(tmp_path: Path) -> None:
    with (tmp_path / "journal").open("w+") as stream:
        st = os.fstat(stream.fileno())
        env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        setup_logging("info", "text", env, stream=stream)
        logging.getLogger("pvewatch").warning("hello")
        stream.seek(0)
        assert stream.read() == "WARNING pvewatch: hello\n"


@pytest.mark.parametrize("value", ["", "garbage", "1:2", "12"])
def test_journal_stream_of_another_file_is_not_ours(tmp_path: Path, value: str) -> None:
    with (tmp_path / "f").open("w") as stream:
        assert not journald_adds_timestamps({"JOURNAL_STREAM": value}, stream)
    assert not journald_adds_timestamps({"JOURNAL_STREAM": "1:2"}, io.StringIO())


def test_setting_up_twice_replaces_the_handler_and_the_level() -> None:
    first, second = io.StringIO(), io.StringIO()
    setup_logging("info", "text", {}, stream=first)
    setup_logging("error", "json", {}, stream=second)
    logging.getLogger("pvewatch").warning("dropped")
    logging.getLogger("pvewatch").error("kept")
    assert first.getvalue() == ""
    assert [json.loads(x)["message"] for x in second.getvalue().splitlines()] == ["kept"]


def test_noisy_libraries_are_quiet_at_info_even_in_debug() -> None:
    out = io.StringIO()
    setup_logging("debug", "text", {}, stream=out)
    logging.getLogger("httpx").info("HTTP Request: GET ...")
    logging.getLogger("apscheduler.executors").info("Running job ...")
    logging.getLogger("httpcore").warning("worth seeing")
    assert out.getvalue().count("\n") == 1
    assert "worth seeing" in out.getvalue()


def test_unknown_level_or_format_is_refused() -> None:
    with pytest.raises(ValueError, match="level"):
        setup_logging("loud", "text", {}, stream=io.StringIO())
    with pytest.raises(ValueError, match="format"):
        setup_logging("info", "xml", {}, stream=io.StringIO())


def _unreachable_config(tmp_path: Path, log: dict[str, str] | None) -> str:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    doc: dict[str, object] = {
        "clusters": [
            {
                "name": "gone",
                "endpoints": [f"http://127.0.0.1:{port}"],
                "token": "pvewatch@pve!logs=5d0b8a52-0c44-4c1e-9a8b-7d6e5f4a3b2c",
                "timeout_secs": 2,
            }
        ],
        "store": {"path": str(tmp_path / "state.db")},
    }
    if log is not None:
        doc["log"] = log
    path = tmp_path / "watch.yaml"
    path.write_text(json.dumps(doc))
    return str(path)


@pytest.mark.parametrize(
    ("log", "flags", "json_lines"),
    [
        (None, [], False),
        ({"format": "json"}, [], True),
        ({"format": "json"}, ["--log-format", "text"], False),  # the flag wins
        (None, ["--log-format", "json"], True),
    ],
)
def test_the_log_format_of_a_real_run(
    tmp_path: Path, log: dict[str, str] | None, flags: list[str], json_lines: bool
) -> None:
    config = _unreachable_config(tmp_path, log)
    result = subprocess.run(
        [sys.executable, "-m", "pvewatch", "once", "-c", config, *flags],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"},
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    errors = [line for line in lines if "gone could not be polled" in line]
    assert errors, result.stderr
    if json_lines:
        entries = [json.loads(line) for line in lines]
        assert any(e["level"] == "error" and e["logger"] == "pvewatch" for e in entries)
    else:
        assert " ERROR pvewatch: cluster gone could not be polled" in errors[0]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_secrets_are_masked_in_messages_extras_and_tracebacks(fmt: str) -> None:
    out = io.StringIO()
    setup_logging("debug", fmt, {}, stream=out, secrets=["s3cr3t-token-value", "hunter22"])
    log = logging.getLogger("pvewatch.test")
    log.warning("a proxy echoed s3cr3t-token-value", extra={"detail": "pw=hunter22"})
    try:
        raise ValueError("hunter22 in an exception")
    except ValueError:
        log.debug("failed", exc_info=True)
    written = out.getvalue()
    assert "s3cr3t-token-value" not in written
    assert "hunter22" not in written
    assert written.count("***") >= 3
