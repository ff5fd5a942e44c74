"""decode_stable: the rows of a body exactly as the generic decode gives them, or a refusal.

A refusal is a ValueError, after which the client decodes generically: it costs time,
never correctness. Accepting a body must never change a row.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvewatch.pve.stable import COUNTERS, STABLE_FIELDS, decode_stable
from pvewatch.watch.normalize import COUNTER_FIELDS, Normalizer, normalize
from tests.pve.support import CAPTURED

NOW = datetime(2026, 8, 20, 9, 15, tzinfo=UTC)
UNKNOWN = ["x", "name2", "Name", "network_type", "cgroup_mode"]  # the last two: attribute names

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63, max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["", "1", "running", "pve1", "a;b", "é\u0000"])
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner)
)
keys = st.sampled_from(STABLE_FIELDS + COUNTERS) | st.sampled_from(UNKNOWN)
known = st.sampled_from(STABLE_FIELDS)
labels = st.none() | st.integers() | st.sampled_from(["", "1", "running", "pve1", "a,b"])


def member(key: str, value: Any) -> str:
    return f"{json.dumps(key)}:{msgspec.json.encode(value).decode()}"


@st.composite
def row_text(draw: st.DrawFn) -> str:
    """A row as JSON text, its members in any order, maybe with duplicate keys: one of the
    shape PVE sends (usually), or one with any keys and values."""
    if draw(st.integers(0, 3)):
        rid = draw(st.sampled_from(["qemu/100", "node/pve1", "/pool/x", ""]))
        kind = draw(st.sampled_from(["qemu", "node", "pool", ""]))
        pairs = [("id", rid), ("type", kind), *draw(st.lists(st.tuples(known, labels)))]
        pairs += draw(st.lists(st.tuples(st.sampled_from(COUNTERS), scalars), max_size=3))
    else:
        pairs = draw(st.lists(st.tuples(keys | st.sampled_from(["id", "type"]), json_values)))
    return "{" + ",".join(draw(st.permutations([member(k, v) for k, v in pairs]))) + "}"


bodies = st.lists(row_text(), max_size=4).map(lambda rows: '{"data":[' + ",".join(rows) + "]}")


def stable_dicts(body: bytes) -> list[dict[str, Any]] | None:
    """What the client's generic path accepts, without counters; None: it refuses."""
    try:
        data = msgspec.json.decode(body)
    except ValueError:
        return None
    rows = data.get("data") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not all(
        isinstance(r, dict) and isinstance(r.get("id"), str) and isinstance(r.get("type"), str)
        for r in rows
    ):
        return None
    return [{k: v for k, v in r.items() if k not in COUNTER_FIELDS} for r in rows]


def typed(value: Any) -> str:
    """A repr in which 1, 1.0 and True differ, and key order does not."""
    return repr(sorted(value.items()) if isinstance(value, dict) else value)


@given(bodies)
def test_an_accepted_body_gives_the_rows_of_the_generic_decode(text: str) -> None:
    body = text.encode()
    expected = stable_dicts(body)
    try:
        rows = decode_stable(body)
    except ValueError:
        return  # refused: the client decodes generically
    assert expected is not None, "accepted what the generic path refuses"
    assert [typed(r) for r in rows.dicts()] == [typed(r) for r in expected]
    assert repr(Normalizer()("c", rows, NOW)) == repr(normalize("c", expected, NOW))


@given(
    st.lists(
        st.fixed_dictionaries(
            {"id": st.sampled_from(["qemu/1", "node/a"]), "type": st.sampled_from(["qemu", "x"])},
            optional={f: labels for f in STABLE_FIELDS[2:]} | {c: scalars for c in COUNTERS},
        ),
        max_size=4,
    )
)
def test_rows_of_the_fields_pve_sends_are_not_refused(rows: list[dict[str, Any]]) -> None:
    body = msgspec.json.encode({"data": rows, "success": 1})
    assert [typed(r) for r in decode_stable(body).dicts()] == [
        typed({k: v for k, v in r.items() if k not in COUNTER_FIELDS}) for r in rows
    ]


ROW = '{"id":"qemu/100","type":"qemu","vmid":100,"name":"web",%s}'


@pytest.mark.parametrize(
    "extra",
    [
        '"description":"x"',  # a field it does not know
        '"network_type":"zone"',  # the Python name of network-type
        '"vmid":true',  # a bool is not a label: it would compare equal to 1
        '"vmid":100.0',
        '"template":1.0',
        '"tags":["a","b"]',
        '"name":{"a":1}',
        '"id":7',
        '"type":null',
        '"cpu":[1]',  # a counter that is not a scalar
    ],
)
def test_refused(extra: str) -> None:
    body = '{"data":[' + ROW % extra + "]}"
    with pytest.raises(msgspec.ValidationError):
        decode_stable(body.encode())


@pytest.mark.parametrize(
    "body",
    ['{"data":null}', '{"data":{}}', "[]", '{"x":[]}', '{"data":[1]}', '{"data":[{}]}', "{"],
)
def test_refused_bodies(body: str) -> None:
    with pytest.raises(msgspec.DecodeError):  # a ValueError, as the client expects
        decode_stable(body.encode())


def test_null_and_absent_stay_apart_and_ints_stay_ints() -> None:
    body = b'{"data":[{"id":"qemu/1","type":"qemu","pool":null,"name":12,"cpu":true}]}'
    rows = decode_stable(body)
    assert rows.dicts() == [{"id": "qemu/1", "type": "qemu", "pool": None, "name": 12}]
    assert type(rows.dicts()[0]["name"]) is int
    assert "lock" in STABLE_FIELDS
    assert "lock" not in rows.dicts()[0]


def test_the_counters_are_those_normalize_skips() -> None:
    assert set(COUNTERS) == COUNTER_FIELDS
    assert not COUNTER_FIELDS & set(STABLE_FIELDS)
    assert STABLE_FIELDS[:2] == ("id", "type")


@pytest.mark.parametrize(
    "path", sorted(CAPTURED.glob("*cluster-resources*.json")), ids=lambda p: p.stem
)
def test_captured_answers_take_the_typed_path(path: Any) -> None:
    body = path.read_bytes()
    expected = stable_dicts(body)
    assert expected is not None
    rows = decode_stable(body)
    assert [typed(r) for r in rows.dicts()] == [typed(r) for r in expected]
