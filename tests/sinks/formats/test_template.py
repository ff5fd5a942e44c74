"""The template format: a user's Jinja2 template, sandboxed, checked at load."""

from __future__ import annotations

import json

import pytest

from pvewatch.model import Event
from pvewatch.sinks.formats.template import ERROR_HEADER, TemplateFormatter, template_problem

from .events import FIRING, NODE_OFFLINE, burst


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("{{ event.summary }}", None),
        ("{% for e in events %}{{ e.id }}{% endfor %}", None),
        ("line 1\n{{ event.summary }\n", "line 2: unexpected '}'"),
        ("{% if %}", "line 1: Expected an expression, got 'end of statement block'"),
        ("{{ event.summery }}", "does not render a sample event: UndefinedError: "),
        ("{{ ''.__class__.__mro__ }}", "does not render a sample event: SecurityError: "),
        ("{{ nothing }}", "does not render a sample event: UndefinedError: 'nothing' is undefined"),
    ],
)
def test_template_problem(source: str, problem: str | None) -> None:
    found = template_problem(source)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert found.startswith(problem), found


def test_renders_the_native_event_object() -> None:
    f = TemplateFormatter("{{ event.resource.name }} {{ event.cause.user }}", "text/plain")
    (payload,) = f.render([FIRING])
    assert (payload.body, payload.content_type, payload.headers) == (
        b"web1 alice@pve",
        "text/plain",
        {},
    )


def test_an_event_the_template_did_not_foresee_falls_back_to_the_native_body() -> None:
    f = TemplateFormatter("{{ event.resource.name }}", "text/plain")
    event = json.loads(json.dumps(FIRING.to_dict()))
    event["resource"] = None
    (payload,) = f.render([Event.from_dict(event)])
    assert payload.content_type == "application/json"
    assert payload.headers[ERROR_HEADER].startswith("UndefinedError: ")
    assert json.loads(payload.body)["data"]["id"] == FIRING.id


def test_grouping_template_gets_the_burst() -> None:
    events = burst(3)
    f = TemplateFormatter("{{ events | length }} {{ event.id }}", "text/plain", group=True)
    assert f.groups
    (payload,) = f.render(events)
    assert payload.body == f"5 {events[0].id}".encode()
    assert payload.event_ids == tuple(e.id for e in events)


def test_without_group_each_event_is_one_message() -> None:
    f = TemplateFormatter("{{ event.type }}", "text/plain")
    assert [p.body for p in f.render([FIRING, NODE_OFFLINE])] == [b"guest.stopped", b"node.offline"]
