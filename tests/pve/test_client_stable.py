"""PveClient.stable_resources: the typed decode when it is exact, else what resources()
gives, and every failure exactly as resources() reports it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from pvewatch.errors import SourceError
from pvewatch.pve import client as client_module
from pvewatch.watch.normalize import COUNTER_FIELDS
from pvewatch.watch.rows import StableRows
from tests.pve.test_client_errors import ERROR_CASES, URL, make

PVE_ROWS = [
    {"id": "node/pve1", "type": "node", "node": "pve1", "status": "online", "cpu": 0.1},
    {"id": "qemu/100", "type": "qemu", "vmid": 100, "node": "pve1", "name": None, "mem": 5},
]
UNKNOWN = [{**PVE_ROWS[1], "description": "a field the Struct does not know"}]


@pytest.fixture
def router() -> respx.MockRouter:
    return respx.MockRouter(assert_all_called=False)


def without_counters(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in COUNTER_FIELDS} for r in rows]


@pytest.mark.parametrize(
    ("answer", "error"),
    [(answer, error) for _, answer, error, _ in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
async def test_failures_are_those_of_resources(
    router: respx.MockRouter, answer: Callable[[], Any], error: type[SourceError]
) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        result = answer()
        if isinstance(result, Exception):
            raise result
        assert isinstance(result, httpx.Response)
        return result

    router.get(URL).mock(side_effect=respond)
    async with make(router, "pve1") as pve:
        with pytest.raises(error) as typed:
            await pve.stable_resources()
        with pytest.raises(error) as generic:
            await pve.resources()
    assert str(typed.value) == str(generic.value)


async def test_a_pve_answer_is_decoded_typed(router: respx.MockRouter) -> None:
    router.get(URL).respond(json={"data": PVE_ROWS})
    async with make(router, "pve1") as pve:
        rows = await pve.stable_resources()
    assert isinstance(rows, StableRows)
    assert rows.dicts() == without_counters(PVE_ROWS)


async def test_after_a_refusal_answers_are_decoded_generically_for_a_while(
    router: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "STABLE_RETRY_AFTER", 2)
    route = router.get(URL)
    async with make(router, "pve1") as pve:
        route.respond(json={"data": UNKNOWN})
        assert await pve.stable_resources() == UNKNOWN  # refused: the dicts, as they came
        route.respond(json={"data": PVE_ROWS})
        assert await pve.stable_resources() == PVE_ROWS  # not tried for two answers
        assert await pve.stable_resources() == PVE_ROWS
        assert isinstance(await pve.stable_resources(), StableRows)


async def test_a_body_that_is_not_json_does_not_pause_the_typed_decode(
    router: respx.MockRouter,
) -> None:
    route = router.get(URL)
    async with make(router, "pve1") as pve:
        route.respond(text="<html>")
        with pytest.raises(SourceError, match="not JSON"):
            await pve.stable_resources()
        route.respond(json={"data": PVE_ROWS})
        assert isinstance(await pve.stable_resources(), StableRows)
