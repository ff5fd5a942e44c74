"""The status page in a real headless Chromium (Debian's chromium + chromium-driver, driven
by selenium), served by the real daemon watching the simulator: it loads, shows the
cluster and a stopped guest's event with its cause, filters, refreshes itself without a
reload, and shows a guest named `<script>alert(1)</script>` as text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pvewatch.simulator.server import SimServer
from tests.e2e.harness import simulator, wait_for
from tests.e2e.page_rig import api, browser, daemon, daemon_config, sim_call, stop_by
from tests.test_http import HASH

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with simulator(guests=12) as s:
        for vmid in (100, 101):
            sim_call(s, "PATCH", f"/resources/qemu/{vmid}", {"status": "running"})
        yield s


@pytest.fixture(scope="module")
def url(sim: SimServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with daemon(daemon_config(sim, tmp_path_factory.mktemp("page"))) as found:
        stop_by(sim, 100, "alice@pve")
        wait_for(
            lambda: api(found, "/api/v1/events", type="guest.stopped")["events"],
            what="the stop of VM 100",
        )
        yield found


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with browser() as driver:
        yield driver


def other_guest(sim: SimServer, n: int) -> str:
    """The n-th guest other than VMs 100 and 101."""
    rows = sim_call(sim, "GET", "/resources")
    ids = [r["id"] for r in rows if r["type"] in ("qemu", "lxc")]
    return str(sorted(set(ids) - {"qemu/100", "qemu/101"})[n])


def texts(driver: Any, css: str) -> list[str]:
    """The text of each element `css` selects, read in one go (the live part is swapped
    in while the test looks: elements found earlier may be gone)."""
    script = "return Array.from(document.querySelectorAll(arguments[0]), e => e.textContent)"
    return [" ".join(t.split()) for t in driver.execute_script(script, css)]


def test_it_shows_the_cluster_and_a_stopped_guest_with_its_cause(chromium: Any, url: str) -> None:
    from selenium.webdriver.common.by import By

    chromium.get(url + "/")
    assert chromium.title == "pvewatch"
    [card] = chromium.find_elements(By.CSS_SELECTOR, "#clusters .card")
    assert card.get_attribute("data-cluster") == "e2e"
    assert "ok" in card.find_element(By.CLASS_NAME, "badge").text
    assert "online" in card.text  # the nodes counted
    [event] = chromium.find_elements(By.CSS_SELECTOR, 'details[data-type="guest.stopped"]')
    assert "stopped by alice@pve" in event.text
    event.find_element(By.TAG_NAME, "summary").click()
    cause = event.find_element(By.CLASS_NAME, "cause").text
    assert cause.startswith("user by alice@pve UPID:")
    sinks = texts(chromium, "details[open] table.deliveries tr td:first-child")
    assert sorted(sinks) == ["events", "hook"]
    assert "hook" in texts(chromium, "#queues td:first-child")
    assert chromium.get_log("browser") == []  # no CSP violation, no script error


def test_filters_narrow_the_events(chromium: Any, url: str, sim: SimServer) -> None:
    from selenium.webdriver.common.by import By

    sim_call(sim, "PATCH", f"/resources/{other_guest(sim, 0)}", {"name": "renamed-for-filters"})
    wait_for(lambda: api(url, "/api/v1/events", type="guest.renamed")["events"], what="a rename")
    chromium.get(url + "/")
    assert len(texts(chromium, "details.event")) >= 2
    box = chromium.find_element(By.NAME, "type")
    box.send_keys("guest.stopped")
    chromium.find_element(By.CSS_SELECTOR, "#filters button").click()
    wait_for(lambda: "type=guest.stopped" in chromium.current_url, what="the filtered page")
    shown = chromium.find_elements(By.CSS_SELECTOR, "details.event")
    assert [e.get_attribute("data-type") for e in shown] == ["guest.stopped"]
    # A select filters as soon as it changes.
    from selenium.webdriver.support.ui import Select

    Select(chromium.find_element(By.NAME, "severity")).select_by_value("critical")
    wait_for(lambda: "severity=critical" in chromium.current_url, what="the severity filter")
    assert texts(chromium, "details.event") == []
    assert "No event matches these filters." in chromium.find_element(By.ID, "events").text


def test_it_refreshes_without_a_reload(chromium: Any, url: str, sim: SimServer) -> None:
    from selenium.webdriver.common.by import By

    chromium.get(url + "/?refresh=1")
    chromium.execute_script("window.notReloaded = true;")
    chromium.find_element(By.CSS_SELECTOR, "details.event summary").click()  # one open
    opened = chromium.find_element(By.CSS_SELECTOR, "details[open]").get_attribute("id")
    stop_by(sim, 101, "bob@pve")
    wait_for(
        lambda: any("bob@pve" in t for t in texts(chromium, "details.event summary")),
        what="the new stop on the page",
    )
    assert chromium.execute_script("return window.notReloaded === true;")
    assert chromium.execute_script("return document.getElementById(arguments[0]).open;", opened)


def test_a_hostile_guest_name_is_text(chromium: Any, url: str, sim: SimServer) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    sim_call(sim, "PATCH", f"/resources/{other_guest(sim, 1)}", {"name": HOSTILE})
    wait_for(
        lambda: any(e["resource"]["name"] == HOSTILE for e in api(url, "/api/v1/events")["events"]),
        what="the hostile rename",
    )
    chromium.get(url + "/")
    summaries = texts(chromium, "details.event summary")
    assert any(HOSTILE in t for t in summaries), summaries
    with pytest.raises(NoAlertPresentException):
        chromium.switch_to.alert.text  # noqa: B018
    scripts = chromium.find_elements(By.TAG_NAME, "script")
    assert len(scripts) == 1  # the page's own


def test_it_reads_on_a_phone(chromium: Any, url: str) -> None:
    chromium.set_window_size(412, 915)  # a common phone's CSS pixels
    try:
        chromium.get(url + "/")
        width = chromium.execute_script("return document.documentElement.scrollWidth;")
        inner = chromium.execute_script("return window.innerWidth;")
        assert width <= inner, "the page scrolls sideways on a phone"
    finally:
        chromium.set_window_size(1000, 1000)


def test_silence_a_resource_from_the_page_then_expire_it(
    sim: SimServer, tmp_path: Path, chromium: Any
) -> None:
    """With a password on the listener: the buttons are there and work from the page
    (the browser sends the password it was given and the page's write header)."""
    from selenium.webdriver.common.by import By

    sim_call(sim, "PATCH", "/resources/qemu/100", {"status": "running"})
    with daemon(daemon_config(sim, tmp_path, basic_auth_users={"admin": HASH})) as url:
        stop_by(sim, 100, "dave@pve")
        host = url.removeprefix("http://")
        chromium.get(f"http://admin:s3cret@{host}/?type=guest.stopped")
        wait_for(lambda: texts(chromium, 'button[data-act="silence"]'), what="a silence button")
        chromium.find_element(By.CSS_SELECTOR, "details.event summary").click()
        chromium.find_element(By.CSS_SELECTOR, 'button[data-act="silence"]').click()
        wait_for(lambda: texts(chromium, "#silences code"), what="the silence on the page")
        [match] = texts(chromium, "#silences code")
        assert match.startswith("cluster=e2e,resource=qemu/")
        chromium.find_element(By.CSS_SELECTOR, 'button[data-act="expire"]').click()
        wait_for(
            lambda: "No active silence." in " ".join(texts(chromium, "#silences")),
            what="the silence expired",
        )
