"""The read API (pvewatch.http.api) over a real SQLite store, and through a real listener
with basic auth: what a script gets, what it may write, and the 400s of a bad query.
Its query parsing (pvewatch.http.query) is pure: table tests and a property."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvewatch.config.types import HttpConfig
from pvewatch.http.listener import Listener
from pvewatch.http.page import read_routes
from pvewatch.http.query import EVENT_PARAMS, BadQuery, event_query
from pvewatch.http.routes import Answer, Asked, Route, find
from pvewatch.http.view import ReadView, Source
from pvewatch.model import Cause, Severity, SourceHealth
from pvewatch.observability.probes import Heartbeat
from pvewatch.secret import Secret
from pvewatch.store.base import CheckState, EventQuery
from pvewatch.store.sqlite import SqliteStore
from tests.store.builders import T0, event, resources, snapshot
from tests.test_http import HASH, LOCAL, new_metrics, new_readiness

NOW = T0 + timedelta(hours=1)
WRITE = {"X-Pvewatch-Write": "1", "Host": "pvewatch:9886"}


# --- the query string --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, EventQuery()),
        (
            {"type": "guest.*", "cluster": "prod"},
            EventQuery(type_pattern="guest.*", cluster="prod"),
        ),
        (
            {"severity": "critical", "resource": "qemu/1"},
            EventQuery(severity="critical", resource="qemu/1"),
        ),
        ({"since": "2h"}, EventQuery(since=NOW - timedelta(hours=2))),
        ({"since": "2026-11-28T01:02:03Z"}, EventQuery(since=T0)),
        ({"since": "2026-11-28T01:02:03"}, EventQuery(since=T0)),  # no zone: UTC
        ({"until": "2026-11-28T02:02:03+01:00"}, EventQuery(until=T0)),
        ({"limit": "1000", "cursor": "42"}, EventQuery(limit=1000, before=42)),
        ({"cluster": "", "type": "  "}, EventQuery()),  # a form's empty fields
    ],
)
def test_event_query_reads(params: dict[str, str], expected: EventQuery) -> None:
    assert event_query(params, NOW) == expected


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"sort": "time"}, "unknown parameter 'sort'"),
        ({"limit": "0"}, "limit: expected a whole number from 1 to 1000, got '0'"),
        ({"limit": "1001"}, "limit: expected a whole number"),
        ({"limit": "-1"}, "limit: expected a whole number"),
        ({"cursor": "abc"}, "cursor: expected a whole number"),
        ({"severity": "high"}, "severity: 'high' is none of info, warning, critical"),
        ({"since": "yesterday"}, "since: 'yesterday' is neither an RFC 3339 time"),
        ({"until": "2h", "since": "1h"}, "since: must be before until"),
        ({"type": "x" * 201}, "type: longer than 200 characters"),
    ],
)
def test_event_query_refuses(params: dict[str, str], reason: str) -> None:
    with pytest.raises(BadQuery, match=reason.replace("(", r"\(")):
        event_query(params, NOW)


@given(st.dictionaries(st.sampled_from(EVENT_PARAMS), st.text(max_size=30)))
def test_any_query_string_is_read_or_refused_with_a_reason(params: dict[str, str]) -> None:
    reason = None
    try:
        query = event_query(params, NOW)
    except BadQuery as e:
        reason = str(e)
    if reason is None:
        assert 1 <= query.limit <= 1000
    else:  # the reason names the parameter
        assert reason.split(":")[0] in EVENT_PARAMS


# --- the API over a store ----------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "state.db", clock=lambda: T0) as s:
        stopped = dataclasses.replace(
            event(1), cause=Cause("user", "UPID:pve1:1:2:3:qmstop:100:root@pam:", "root@pam")
        )
        critical = dataclasses.replace(
            event(2, type_="node.offline", resource_id="node/pve2"), severity=Severity.CRITICAL
        )
        s.commit_poll(
            "prod",
            snapshot=snapshot(resources(3)),
            events=[stopped, critical],
            sinks=["hook"],
            health=SourceHealth(),
        )
        s.commit_poll(
            "lab", snapshot=None, events=[], sinks=[], health=SourceHealth(4, True, "auth")
        )
        yield s


def routes(store: SqliteStore, *, writable: bool = False) -> tuple[Route, ...]:
    source = Source(
        store, clusters=["prod", "lab", "new"], sinks=["hook", "log"], writable=writable
    )
    return read_routes(ReadView(source, clock=lambda: NOW), logging.getLogger("test"))


def ask(
    table: tuple[Route, ...],
    path: str,
    method: str = "GET",
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: Any = None,
) -> tuple[int, Any]:
    found = find(table, path)
    assert found is not None, path
    raw = b"" if body is None else json.dumps(body).encode()
    answer: Answer = found[0].answer(Asked(method, path, found[1], headers or {}, raw, query or {}))
    return answer.status, json.loads(answer.body)


def test_status_names_every_cluster_with_health_counts_and_checks(store: SqliteStore) -> None:
    status, body = ask(routes(store), "/api/v1/status")
    assert status == 200
    clusters = {c["name"]: c for c in body["clusters"]}
    assert list(clusters) == ["lab", "new", "prod"]
    assert clusters["prod"]["health"] == "ok"
    assert clusters["prod"]["resources"] == {"qemu": {"running": 3}}
    assert clusters["prod"]["last_poll"] == "2026-11-28T01:02:03Z"
    assert clusters["lab"] | {"resources": {}} == clusters["lab"]
    assert (clusters["lab"]["health"], clusters["lab"]["consecutive_failures"]) == (
        "unreachable",
        4,
    )
    assert clusters["lab"]["last_error"] == "auth"
    assert clusters["new"]["health"] == "unknown"
    assert all(c["checks"] == [] for c in clusters.values())


def test_status_shows_each_check_as_the_store_last_committed_it(store: SqliteStore) -> None:
    ceph = CheckState("ceph", "idle", T0, 0)
    ha = CheckState("ha", "disabled", None, 0, "needs Sys.Audit on /")
    backups = CheckState("backups", "up", T0, 2)
    for check in (ceph, ha, backups):
        store.commit_check("prod", check.name, state={}, status=check, events=[], sinks=[])
    _, body = ask(routes(store), "/api/v1/status")
    prod = next(c for c in body["clusters"] if c["name"] == "prod")
    assert [(c["name"], c["state"], c["open_conditions"]) for c in prod["checks"]] == [
        ("backups", "up", 2),
        ("ceph", "idle", 0),
        ("ha", "disabled", 0),
    ]
    assert prod["checks"][2]["detail"] == "needs Sys.Audit on /"
    assert prod["checks"][2]["last_run"] is None
    assert prod["checks"][0]["last_run"] == "2026-11-28T01:02:03Z"


def test_events_in_the_native_shape_with_cause_and_deliveries(store: SqliteStore) -> None:
    status, body = ask(routes(store), "/api/v1/events", query={"type": "guest.*"})
    assert status == 200
    [stopped] = body["events"]
    assert stopped == event(1).to_dict() | {"cause": {
        "kind": "user", "task": "UPID:pve1:1:2:3:qmstop:100:root@pam:", "user": "root@pam"
    }}  # fmt: skip
    assert body["deliveries"] == {
        stopped["id"]: [{"sink": "hook", "state": "pending", "attempts": 0, "last_error": None}]
    }
    assert body["next"] is None


def test_events_page_by_cursor(store: SqliteStore) -> None:
    table = routes(store)
    _, first = ask(table, "/api/v1/events", query={"limit": "1"})
    _, second = ask(table, "/api/v1/events", query={"limit": "1", "cursor": first["next"]})
    assert [e["id"] for e in first["events"] + second["events"]] == ["evt_prod_2", "evt_prod_1"]
    _, third = ask(table, "/api/v1/events", query={"limit": "1", "cursor": second["next"]})
    assert third["events"] == []


def test_a_bad_parameter_is_a_400_with_the_reason(store: SqliteStore) -> None:
    status, body = ask(routes(store), "/api/v1/events", query={"severity": "loud"})
    assert (status, body) == (400, {"error": "severity: 'loud' is none of info, warning, critical"})


def test_deliveries_show_pending_and_dead_per_sink_with_the_last_error(
    store: SqliteStore,
) -> None:
    [first, _] = store.deliveries(sink="hook")
    store.mark_dead(first.outbox_id, attempts=5, error="HTTP 500 from the receiver", now=T0)
    status, body = ask(routes(store), "/api/v1/deliveries")
    assert status == 200
    assert body["sinks"] == [
        {"sink": "hook", "configured": True, "pending": 1, "dead": 1,
         "last_error": "HTTP 500 from the receiver"},
        {"sink": "log", "configured": True, "pending": 0, "dead": 0, "last_error": None},
    ]  # fmt: skip


def test_nothing_to_read_between_runtimes_is_a_503(store: SqliteStore) -> None:
    table = read_routes(ReadView(None), logging.getLogger("test"))
    assert ask(table, "/api/v1/status")[0] == 503


def test_a_store_that_fails_is_a_503_without_its_details(store: SqliteStore) -> None:
    table = routes(store)
    store.close()
    status, body = ask(table, "/api/v1/events")
    assert status == 503
    assert "state.db" not in body["error"]


# --- writes ------------------------------------------------------------------------------


def test_no_write_without_listener_auth(store: SqliteStore) -> None:
    silence = {"event": "evt_prod_1"}
    status, body = ask(routes(store), "/api/v1/silences", "POST", headers=WRITE, body=silence)
    assert status == 403
    assert "basic_auth_users" in body["error"]
    assert store.silences() == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "pvewatch:9886"},  # no X-Pvewatch-Write: a form or an img of another site
        WRITE | {"Origin": "https://evil.example"},
        WRITE | {"Sec-Fetch-Site": "cross-site"},
    ],
)
def test_a_write_from_another_site_is_refused(store: SqliteStore, headers: dict[str, str]) -> None:
    table = routes(store, writable=True)
    status, _ = ask(
        table, "/api/v1/silences", "POST", headers=headers, body={"event": "evt_prod_1"}
    )
    assert status == 403
    assert store.silences() == []


def test_silence_an_events_resource_for_two_hours_then_expire_it(store: SqliteStore) -> None:
    table = routes(store, writable=True)
    headers = WRITE | {"Origin": "http://pvewatch:9886", "Authorization": "Basic YWRtaW46cw=="}
    status, body = ask(
        table, "/api/v1/silences", "POST", headers=headers, body={"event": "evt_prod_1"}
    )
    assert status == 201
    made = body["silence"]
    assert made["match"] == "cluster=prod,resource=qemu/100"
    assert made["ends_at"] == "2026-11-28T04:02:03Z"  # NOW + 2 h
    assert made["created_by"] == "admin"
    [kept] = store.silences()
    assert kept.matches(event(7))
    assert not kept.matches(event(7, resource_id="qemu/101"))
    assert ask(table, "/api/v1/silences")[1]["silences"] == [made]
    path = f"/api/v1/silences/{made['id']}/expire"
    assert ask(table, path, "POST", headers=WRITE)[0] == 200
    assert store.silences() == []
    assert ask(table, path, "POST", headers=WRITE)[0] == 404


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"event": "evt_nope"}, 404, "no event 'evt_nope'"),
        ({"event": "evt_prod_1", "duration": "90d"}, 400, "duration"),
        ({"event": "evt_prod_1", "duration": "soon"}, 400, "duration"),
        ({"event": 1}, 400, "expected"),
        ([], 400, "expected"),
    ],
)
def test_a_bad_silence_request_says_why(
    store: SqliteStore, body: Any, status: int, reason: str
) -> None:
    answer = ask(routes(store, writable=True), "/api/v1/silences", "POST", headers=WRITE, body=body)
    assert answer[0] == status
    assert reason in answer[1]["error"]


# --- through the listener ----------------------------------------------------------------


def test_the_api_and_page_follow_the_listeners_auth(store: SqliteStore) -> None:
    config = HttpConfig(listen=LOCAL, basic_auth_users={"admin": Secret(HASH)})
    view = ReadView(Source(store, clusters=["prod"], writable=True))
    listener = Listener(
        config,
        metrics=new_metrics(),
        readiness=new_readiness(),
        heartbeat=Heartbeat(),
        routes=read_routes(view, logging.getLogger("test")),
    )
    listener.start()
    try:
        with httpx.Client(base_url=listener.url, timeout=10) as client:
            for path in ("/", "/api/v1/status", "/api/v1/events?limit=1"):
                assert client.get(path).status_code == 401, path
            auth = ("admin", "s3cret")
            got = client.get("/api/v1/events", params={"type": "node.*"}, auth=auth)
            assert [e["id"] for e in got.json()["events"]] == ["evt_prod_2"]
            page = client.get("/", auth=auth)
            assert page.status_code == 200
            assert "script-src 'nonce-" in page.headers["Content-Security-Policy"]
            made = client.post(
                "/api/v1/silences",
                json={"event": "evt_prod_1"},
                auth=auth,
                headers={"X-Pvewatch-Write": "1"},
            )
            assert made.status_code == 201, made.text
            assert made.json()["silence"]["created_by"] == "admin"
    finally:
        listener.close()
