"""Shared by the simulator tests: the fake clock, the test token, fixture paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

CAPTURED = Path(__file__).resolve().parents[2] / ".." / "shared" / "pve-api" / "captured"
HEALTH_CAPTURED = CAPTURED.parent / "health" / "captured"
TOKEN = "pvewatch@pve!monitor=0b2c7a9e-3f4d-4c1e-9a8b-7d6e5f4a3b2c"
TOKEN_HEADER = {"Authorization": "PVEAPIToken=" + TOKEN}
START = 1_787_217_235.0  # 2026-08-20T09:13:55Z


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, secs: float) -> None:
        self.now += secs


def rows_by_id(response: httpx.Response) -> dict[str, dict[str, Any]]:
    assert response.status_code == 200, response.text
    return {row["id"]: row for row in response.json()["data"]}
