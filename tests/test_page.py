"""The status page rendered (pvewatch.http.page) without a browser: every value escaped,
the filters, the live part, the write buttons only when writes are allowed. The browser
tests (tests/e2e/test_page_browser.py) check what a person sees."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from pvewatch.http.page import read_routes
from pvewatch.http.routes import Answer, Asked, Route, find
from pvewatch.http.view import ReadView, Source
from pvewatch.model import ResourceRef, SourceHealth
from pvewatch.store.sqlite import SqliteStore
from tests.store.builders import T0, event, resources, snapshot

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "state.db", clock=lambda: T0) as s:
        hostile = dataclasses.replace(
            event(1, cluster=HOSTILE),
            summary=f"guest {HOSTILE} stopped",
            resource=ResourceRef("qemu/100", "qemu", 100, HOSTILE, "pve1"),
            details={HOSTILE: HOSTILE},
        )
        s.commit_poll(
            HOSTILE, snapshot=None, events=[hostile], sinks=[HOSTILE], health=SourceHealth()
        )
        s.commit_poll(
            "prod",
            snapshot=snapshot(resources(2)),
            events=[event(2), event(3, type_="node.offline", resource_id="node/pve1")],
            sinks=["hook"],
            health=SourceHealth(),
        )
        yield s


def page(
    store: SqliteStore, query: dict[str, str] | None = None, *, writable: bool = False
) -> Answer:
    table: tuple[Route, ...] = read_routes(
        ReadView(Source(store, clusters=["prod"], writable=writable), clock=lambda: T0),
        logging.getLogger("test"),
    )
    found = find(table, "/")
    assert found is not None
    return found[0].answer(Asked("GET", "/", {}, {}, query=query or {}))


def test_every_value_is_escaped(store: SqliteStore) -> None:
    answer = page(store)
    assert answer.status == 200
    html = answer.body.decode()
    assert HOSTILE not in html
    # cluster card, filter option, event summary, resource name, details, sink: all text
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 6
    assert html.count("<script") == 1  # the page's own, under the nonce
    assert "script-src 'nonce-" in answer.headers["Content-Security-Policy"]


def test_no_asset_from_elsewhere(store: SqliteStore) -> None:
    html = page(store).body.decode()
    assert "http://" not in html
    assert "https://" not in html
    assert " src=" not in html


def test_filters_narrow_the_events(store: SqliteStore) -> None:
    html = page(store, {"cluster": "prod", "type": "node.*"}).body.decode()
    assert 'id="event-evt_prod_3"' in html
    assert 'id="event-evt_prod_2"' not in html
    assert html.count('<details class="event') == 1
    assert '<option value="prod" selected>' in html


def test_the_live_part_is_the_fragment_the_page_swaps_in(store: SqliteStore) -> None:
    html = page(store, {"part": "live", "severity": "warning"}).body.decode()
    assert "<html" not in html
    assert "<script" not in html
    assert 'id="event-evt_prod_2"' in html


def test_a_bad_filter_is_a_400_saying_why(store: SqliteStore) -> None:
    answer = page(store, {"severity": "loud"})
    assert (answer.status, answer.body) == (
        400,
        b"severity: 'loud' is none of info, warning, critical\n",
    )
    assert page(store, {"refresh": "0"}).status == 400
    assert page(store, {"evil": "1"}).status == 400


@pytest.mark.parametrize("writable", [False, True])
def test_write_buttons_only_when_writes_are_allowed(store: SqliteStore, writable: bool) -> None:
    html = page(store, writable=writable).body.decode()
    assert ('data-act="silence"' in html) is writable


def test_older_events_page_on_with_the_filters_kept(store: SqliteStore) -> None:
    store.commit_poll(
        "prod",
        snapshot=None,
        events=[event(n) for n in range(10, 70)],
        sinks=[],
        health=SourceHealth(),
    )
    first = page(store, {"cluster": "prod"}).body.decode()
    assert first.count('<details class="event') == 50
    older = first.split('<a id="older" href="?')[1].split('"')[0].replace("&amp;", "&")
    query = dict(pair.split("=") for pair in older.split("&"))
    assert query["cluster"] == "prod"
    rest = page(store, query).body.decode()
    shown = re.findall(r'id="event-(evt_prod_\d+)"', first + rest)
    assert sorted(shown) == sorted(f"evt_prod_{n}" for n in [2, 3, *range(10, 70)])
    assert 'id="older"' not in rest
