"""`format: alertmanager` against the real thing: a real Alertmanager is given the same
alert (its labels, annotations, times and generator URL) and routes it to a webhook; the
body it sends must be the body pvewatch sends, field for field — fingerprint and groupKey
included. (tests.need: a skip without Alertmanager, a failure under CI=true.)"""

from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from pvewatch.model import Event, ResourceRef
from tests.e2e.harness import wait_for
from tests.e2e.receiver import Receiver, receiver
from tests.need import tool

from .events import FIRING, NODE_OFFLINE, RESOLVED
from .test_golden import SINKS, formatter

EXTERNAL_URL = SINKS["alertmanager"].external_url
# Alertmanager quotes label values as Go's strconv.Quote does in the groupKey.
ODD_NODE = 'pve"3\\\t\x01é\u00a0\U0001f525\n'
ODD = replace(
    NODE_OFFLINE,
    id="evt_0odd00000000000000000000000",
    resource=ResourceRef(f"node/{ODD_NODE}", "node", node=ODD_NODE),
    condition=f"node.offline:node/{ODD_NODE}",
)
CONFIG = """
route:
  receiver: hook          # the sink's name, as pvewatch names the receiver
  group_by: ['...']       # every label: one alert per group, as pvewatch sends them
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {url}
        send_resolved: true
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def alertmanager(tmp: Path, hook: Receiver) -> Iterator[httpx.Client]:
    binary = tool("alertmanager", "prometheus-alertmanager")
    (tmp / "am.yml").write_text(CONFIG.format(url=hook.url))
    port = _free_port()
    with (tmp / "am.log").open("wb") as log:
        server = subprocess.Popen(
            [binary, f"--config.file={tmp / 'am.yml'}", f"--storage.path={tmp / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", f"--web.external-url={EXTERNAL_URL}",
             "--cluster.listen-address="],
            stdout=log, stderr=log,
        )  # fmt: skip
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
                wait_for(lambda: _ready(client), timeout=30, what="Alertmanager to start")
                yield client
        finally:
            server.terminate()
            server.wait(timeout=30)


def _ready(client: httpx.Client) -> bool:
    try:
        return client.get("/-/ready").status_code == 200
    except httpx.TransportError:
        return False


def ours(event: Event) -> dict[str, Any]:
    body = formatter("alertmanager").body(event)  # type: ignore[attr-defined]
    assert isinstance(body, dict)
    return body


def post(client: httpx.Client, body: dict[str, Any]) -> None:
    """The alert of `body`, as a client of Alertmanager's API gives it."""
    (alert,) = body["alerts"]
    given = {k: alert[k] for k in ("labels", "annotations", "startsAt", "generatorURL")}
    if alert["status"] == "resolved":
        given["endsAt"] = alert["endsAt"]
    client.post("/api/v2/alerts", json=[given]).raise_for_status()


def sent(hook: Receiver, status: str, fingerprint: str) -> dict[str, Any] | None:
    for delivery in hook.deliveries():
        body: dict[str, Any] = delivery.json()
        if body["status"] == status and body["alerts"][0]["fingerprint"] == fingerprint:
            return body
    return None


@pytest.mark.parametrize("problem", [FIRING, NODE_OFFLINE, ODD], ids=["guest", "node", "odd"])
def test_alertmanager_sends_what_pvewatch_sends(tmp_path: Path, problem: Event) -> None:
    firing = ours(problem)
    fingerprint = firing["alerts"][0]["fingerprint"]
    with receiver() as hook, alertmanager(tmp_path, hook) as client:
        post(client, firing)
        real = wait_for(lambda: sent(hook, "firing", fingerprint), what="the firing webhook")
        assert real == firing
        if problem is FIRING:  # and the event that resolves it, with the same labels
            resolved = ours(RESOLVED)
            post(client, resolved)
            real = wait_for(lambda: sent(hook, "resolved", fingerprint), what="the resolution")
            # Alertmanager keeps the problem's startsAt; pvewatch's resolution does not
            # know it and says its own time (docs/sinks.md, "Webhook formats").
            real["alerts"][0]["startsAt"] = resolved["alerts"][0]["startsAt"]
            assert real == resolved
