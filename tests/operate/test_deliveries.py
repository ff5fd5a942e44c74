"""`pvewatch deliveries`, `replay` and `test-sink`, as a user runs them."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pvewatch.cli import main
from pvewatch.config.load import load_config
from pvewatch.config.types import Config, SinkConfig, StoreConfig
from pvewatch.model import SourceHealth
from pvewatch.operate import deliveries
from pvewatch.sinks.log import LogOptions
from pvewatch.sinks.table import SINK_TYPES
from pvewatch.store.sqlite import SqliteStore
from tests.e2e.receiver import Receiver, receiver
from tests.sinks.contract import guest_stopped

SECRET = "whsec_" + base64.b64encode(b"operate-test-key-0123456789").decode()


def write_config(tmp: Path, url: str = "https://hooks.example/T0KEN") -> Path:
    doc = {
        "clusters": [
            {"name": "lab", "endpoints": ["https://pve1.example:8006"], "token": "a@pve!b=c"}
        ],
        "store": {"path": str(tmp / "state.db")},
        "sinks": {
            "hook": {"type": "webhook", "url": url, "secret": SECRET, "timeout_secs": 2},
            "audit": {"type": "log", "format": "json", "path": str(tmp / "audit.jsonl")},
            "chat": {"type": "webhook", "url": url, "format": "slack"},
        },
    }
    path = tmp / "watch.yaml"
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(write_config(tmp_path), {}, sink_types=SINK_TYPES)


@pytest.fixture
def store(config: Config) -> Iterator[SqliteStore]:
    with SqliteStore(config.store.path) as s:
        events = [guest_stopped(100), guest_stopped(101), guest_stopped(102)]
        s.commit_poll("lab", snapshot=None, events=events, sinks=["hook", "audit"],
                      health=SourceHealth())  # fmt: skip
        first, second, _ = s.heads("hook")
        s.mark_dead(first.outbox_id, attempts=9, error="gave up after 9 attempts: 503", now=T)
        s.mark_retry(second.outbox_id, attempts=2, next_attempt_at=T, error="connect\nrefused")
        yield s


T = guest_stopped().time


def run(fn: str, config: Config, **kw: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = getattr(deliveries, fn)(config, out=out, err=err, **kw)
    return rc, out.getvalue(), err.getvalue()


def test_deliveries_lists_pending_and_dead_as_a_table(config: Config, store: SqliteStore) -> None:
    rc, out, _ = run("list_deliveries", config, sink="hook", state=None, as_json=False, limit=50)
    assert rc == 0
    header, *rows = out.splitlines()
    assert header.split()[:6] == ["EVENT", "TYPE", "RESOURCE", "SINK", "STATE", "TRIES"]
    assert [r.split()[4] for r in rows] == ["dead", "pending", "pending"]
    assert "gave up after 9 attempts: 503" in rows[0]
    assert "connect\\nrefused" in rows[1]  # one row per delivery, whatever the error holds
    assert "lab/qemu/100" in rows[0]


def test_deliveries_as_json_and_by_state(config: Config, store: SqliteStore) -> None:
    rc, out, _ = run("list_deliveries", config, sink=None, state="dead", as_json=True, limit=50)
    assert rc == 0
    [row] = [json.loads(line) for line in out.splitlines()]
    assert (row["sink"], row["state"], row["attempts"]) == ("hook", "dead", 9)
    assert row["event"]["id"] == guest_stopped(100).id
    assert row["next_attempt_at"] is None


def test_deliveries_of_an_unknown_sink_or_without_a_store(tmp_path: Path, config: Config) -> None:
    rc, _, err = run("list_deliveries", config, sink="nope", state=None, as_json=False, limit=5)
    assert (rc, "no sink 'nope'" in err) == (2, True)
    rc, _, err = run("list_deliveries", config, sink=None, state=None, as_json=False, limit=5)
    assert rc == 1
    assert "no state store" in err


def test_replay_all_dead_then_one_event(config: Config, store: SqliteStore) -> None:
    rc, out, _ = run("replay", config, sink="hook", event_id=None)
    assert rc == 0
    assert "queued 1 delivery again" in out
    assert store.dead_count("hook") == 0
    rc, _, err = run("replay", config, sink="hook", event_id=None)
    assert rc == 1
    assert "nothing to replay" in err
    store.mark_delivered(store.heads("audit")[0].outbox_id, T)
    rc, out, _ = run("replay", config, sink=None, event_id=guest_stopped(100).id)
    assert rc == 0
    assert "queued 2 deliveries again" in out  # to hook and to audit
    [head] = [h for h in store.heads("audit") if h.event.id == guest_stopped(100).id]
    assert head.attempts == 0


def test_the_cli_runs_them(
    tmp_path: Path, store: SqliteStore, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / "watch.yaml")
    assert main(["deliveries", "-c", path, "--state", "dead", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "dead"
    assert main(["replay", "-c", path, "--all-dead"]) == 0
    assert "queued 1 delivery again" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["replay", "-c", path])  # --event or --all-dead is required
    assert main(["test-sink", "-c", path, "nope"]) == 2


# --- test-sink ---------------------------------------------------------------------------


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver(SECRET) as r:
        yield r


async def test_test_sink_sends_a_real_looking_signed_message(
    tmp_path: Path, hook: Receiver
) -> None:
    config = load_config(write_config(tmp_path, hook.url), {}, sink_types=SINK_TYPES)
    out, err = io.StringIO(), io.StringIO()
    assert await deliveries.sink_test(config, "hook", out=out, err=err) == 0
    [request] = hook.deliveries()
    assert request.verified
    body = request.json()
    assert body["type"] == "guest.stopped"
    assert body["data"]["id"] == request.id
    assert body["data"]["details"] == {"test": True}
    assert body["data"]["cluster"] == "lab"
    text = out.getvalue()
    assert f"{hook.url.split('/hooks')[0]} answered HTTP 200: delivered" in text
    assert f"webhook-id: {request.id}" in text
    assert '{"ok": true}' in text
    assert "T0KEN" not in text + err.getvalue()


@pytest.mark.parametrize(
    ("status", "said"),
    [(410, "pvewatch would disable the sink"), (503, "would be retried"), (400, "would not be")],
)
async def test_test_sink_reports_a_refusal(
    tmp_path: Path, hook: Receiver, status: int, said: str
) -> None:
    hook.set(status=status)
    config = load_config(write_config(tmp_path, hook.url), {}, sink_types=SINK_TYPES)
    out, err = io.StringIO(), io.StringIO()
    assert await deliveries.sink_test(config, "hook", out=out, err=err) == 1
    assert f"answered HTTP {status}: NOT delivered" in out.getvalue()
    assert said in out.getvalue()


async def test_test_sink_when_nobody_listens(tmp_path: Path, hook: Receiver) -> None:
    hook.stop()
    config = load_config(write_config(tmp_path, hook.url), {}, sink_types=SINK_TYPES)
    out, err = io.StringIO(), io.StringIO()
    assert await deliveries.sink_test(config, "hook", out=out, err=err) == 1
    assert "not delivered: http://127.0.0.1:" in err.getvalue()
    assert "cannot connect" in err.getvalue()


async def test_test_sink_to_a_log_sink(tmp_path: Path, config: Config) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert await deliveries.sink_test(config, "audit", out=out, err=err) == 0
    [line] = (tmp_path / "audit.jsonl").read_text().splitlines()
    assert json.loads(line)["details"] == {"test": True}
    assert "sink audit: sent event" in out.getvalue()


def test_sample_for_an_empty_config() -> None:
    config = Config(clusters=(), store=StoreConfig(), sinks=(SinkConfig("s", "log", LogOptions()),))
    assert deliveries.sample_for(config, T).cluster == "prod"
