"""One failure, one page (pvewatch.duplicates): when a vzdump task.failed and a
backup.failed notification are the same failure, whichever came first keeps the page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvewatch.duplicates import WINDOW_SECS, counterpart, marked, original_of, wanted_types
from pvewatch.model import Event, JSONValue, ResourceRef, Severity, format_time

T0 = datetime(2026, 12, 4, 21, 0, tzinfo=UTC)
UPID_ONE = "UPID:pve1:00001234:00005678:69320A00:vzdump:101:root@pam:"
UPID_ALL = "UPID:pve1:00001234:00005678:69320A00:vzdump::root@pam:"


def task(
    node: str = "pve1",
    upid: str = UPID_ONE,
    start: int = 0,
    end: int = 60,
    type_: str = "vzdump",
    id_: str = "evt_task",
) -> Event:
    details: dict[str, JSONValue] = {
        "upid": upid.replace("pve1", node),
        "task_type": type_,
        "node": node,
        "status": "job errors",
        "starttime": format_time(T0 + timedelta(seconds=start)),
        "endtime": format_time(T0 + timedelta(seconds=end)),
    }
    return Event(
        id_, "task.failed", T0, "lab", Severity.WARNING, "s",
        resource=ResourceRef(f"node/{node}", "node", node=node), details=details,
    )  # fmt: skip


def notice(
    node: str = "pve1", at: int = 60, vmids: tuple[int, ...] = (101,), id_: str = "evt_notice"
) -> Event:
    guests: list[JSONValue] = [{"vmid": v, "name": "g", "status": "err"} for v in vmids]
    details: dict[str, JSONValue] = {
        "node": node,
        "sent_at": format_time(T0 + timedelta(seconds=at)),
        "guests": guests,
        "failed_guests": list(vmids),
        "job_id": "backup-1",
        "message": "…",
    }
    return Event(id_, "backup.failed", T0, "lab", Severity.CRITICAL, "s", details=details)


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        (task(), notice(), True),
        (notice(), task(), True),
        (task(upid=UPID_ALL), notice(vmids=(100, 101, 102)), True),  # a job of several guests
        (task(), notice(vmids=()), True),  # no guest table in the message
        (task(), notice(vmids=(100,)), False),  # another guest
        (task(), notice(node="pve2"), False),  # another node
        (task(), notice(at=60 + WINDOW_SECS), True),
        (task(), notice(at=61 + WINDOW_SECS), False),  # long after the task ended
        (task(start=WINDOW_SECS + 1, end=WINDOW_SECS + 60), notice(at=0), False),
        (task(type_="qmigrate"), notice(), False),  # not a backup
        (notice(), notice(id_="evt_other"), False),  # two notifications: two failures
    ],
)
def test_correlation(first: Event, second: Event, same: bool) -> None:
    assert (original_of(second, [first]) is first) is same


def test_a_first_sighting_absorbs_one_duplicate_only() -> None:
    first = task()
    dup, merged = marked(notice(), first)
    assert original_of(notice(id_="evt_again"), [merged, dup]) is None
    # ... and a notification posted twice is not its own duplicate
    assert original_of(notice(), [merged, dup]) is None


def test_the_closest_in_time_is_the_original() -> None:
    early = task(start=0, end=30, id_="evt_early")
    late = task(start=400, end=460, id_="evt_late")
    assert original_of(notice(at=470), [early, late]) is late
    assert original_of(notice(at=40), [early, late]) is early


def test_marked_merges_what_the_first_did_not_know() -> None:
    first = task()
    dup, merged = marked(notice(), first)
    assert dup.suppressed == "duplicate"
    assert dup.details["duplicate_of"] == first.id
    assert merged.details["upid"] == first.details["upid"], "its own values win"
    assert merged.details["failed_guests"] == [101]
    assert merged.details["job_id"] == "backup-1"
    assert merged.details["seen_as"] == {"id": dup.id, "type": "backup.failed"}
    assert merged.suppressed is None


def test_what_is_not_a_sighting() -> None:
    assert counterpart(task()) == "backup.failed"
    assert counterpart(notice()) == "task.failed"
    assert counterpart(task(type_="qmstart")) is None
    broken = Event("e", "task.failed", T0, "lab", Severity.WARNING, "s", details={"node": 1})
    assert counterpart(broken) is None
    assert wanted_types(broken) is None
    assert wanted_types(task()) == ("backup.failed", "task.failed")


@given(
    node=st.sampled_from(["pve1", "pve2"]),
    start=st.integers(0, 5000),
    length=st.integers(0, 5000),
    at=st.integers(-5000, 12000),
    vmids=st.lists(st.integers(100, 103), max_size=3),
)
def test_correlation_is_symmetric(
    node: str, start: int, length: int, at: int, vmids: list[int]
) -> None:
    t, n = task(start=start, end=start + length), notice(node, at, tuple(vmids))
    assert (original_of(n, [t]) is t) == (original_of(t, [n]) is n)


KEY = "replication.failed:replication/100-0"


def replication(
    id_: str, minutes: int, fail_count: int | None = None, type_: str = "replication.failed"
) -> Event:
    details: dict[str, JSONValue] = {} if fail_count is None else {"fail_count": fail_count}
    resource = ResourceRef("replication/100-0", "replication", vmid=100, node="pve1")
    return Event(
        id_, type_, T0 + timedelta(minutes=minutes), "lab", Severity.WARNING, "s",
        resource=resource, condition=KEY, details=details,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("recent", "new", "original"),
    [
        ([], replication("n1", 0, 1), None),
        # the check saw it, PVE's notification follows: one condition
        ([replication("check", 0)], replication("n1", 3, 1), "check"),
        # PVE's repeats (count 2, 3, then days later) while it stays open
        ([replication("n1", 0, 1)], replication("n2", 300, 2), "n1"),
        ([replication("n1", 0, 1)], replication("n4", 2000, 4), "n1"),
        # the check ended it: a new failure is a new page
        (
            [replication("n1", 0, 1), replication("ok", 60, type_="replication.recovered")],
            replication("n2", 90, 2),
            None,
        ),
        # a first failure long after the last one (PVE counts from 1 again)
        ([replication("n1", 0, 1)], replication("n9", 600, 1), None),
        # the check's event after PVE's, a few minutes later
        ([replication("n1", 0, 1)], replication("check", 5), "n1"),
    ],
)
def test_one_replication_condition(recent: list[Event], new: Event, original: str | None) -> None:
    found = original_of(new, recent)
    assert (found.id if found else None) == original
