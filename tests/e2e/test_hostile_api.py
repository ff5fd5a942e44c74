"""`pvewatch run` (in-process, real sockets) against a PVE API that answers 2 GB, a gzip
bomb or a byte a second: every poll ends within timeout_secs plus a margin as one failed
poll, and `source.unreachable` follows after the threshold, with the error class."""

from __future__ import annotations

from pathlib import Path

import pytest

from pvewatch.config.types import ClusterConfig, Config, HttpConfig, SinkConfig, StoreConfig
from pvewatch.secret import Secret
from pvewatch.sinks.log import LogOptions
from tests.e2e.harness import TOKEN, read_events, running_watcher, wait_for
from tests.pve.hostile import TWO_GB, hostile_api

TIMEOUT_SECS = 2.0
MARGIN_SECS = 10.0  # a loaded 2-core machine


def _config(url: str, tmp: Path) -> Config:
    cluster = ClusterConfig(
        name="hostile",
        endpoints=(url,),
        token=Secret(TOKEN),
        interval_secs=1.0,
        timeout_secs=TIMEOUT_SECS,
        source_failure_threshold=2,
        max_response_bytes=4 * 1024**2,
    )
    return Config(
        clusters=(cluster,),
        store=StoreConfig(path=tmp / "state.db"),
        http=HttpConfig(listen=None),
        sinks=(
            SinkConfig("events", "log", LogOptions(format="json", path=str(tmp / "events.jsonl"))),
        ),
    )


@pytest.mark.parametrize(
    ("mode", "kind"),
    [("flood", "bad_response"), ("bomb", "bad_response"), ("trickle", "timeout")],
)
def test_a_hostile_answer_is_a_failed_poll_and_source_unreachable_follows(
    mode: str, kind: str, tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    with hostile_api(mode) as hostile, running_watcher(_config(hostile.url, tmp_path)):
        unreachable = wait_for(
            lambda: [e for e in read_events(events) if e["type"] == "source.unreachable"],
            timeout=4 * (1 + TIMEOUT_SECS) + MARGIN_SECS,
            what="source.unreachable",
        )
        polls = len(hostile.served)
        wait_for(lambda: len(hostile.served) > polls, what="the polls to go on")
    (event,) = unreachable
    assert event["details"]["error"] == kind
    assert event["details"]["failures"] == 2
    for served in hostile.served:  # each request ended by the client, in time
        assert served.seconds < TIMEOUT_SECS + MARGIN_SECS
        assert served.bytes_sent < TWO_GB // 16
