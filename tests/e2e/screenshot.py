"""`make screenshot`: the README's picture of the status page, taken for real: the daemon
watching a simulator where alice stopped a VM and another one crashed, a webhook that is
refused (dead), seen by headless Chromium.

    python -m tests.e2e.screenshot docs/status-page.png
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.e2e.harness import simulator, wait_for
from tests.e2e.page_rig import api, browser, daemon, daemon_config, sim_call, stop_by


def main(out: Path) -> None:
    with simulator(guests=12) as sim, tempfile.TemporaryDirectory() as tmp:
        for vmid in (100, 101):
            sim_call(sim, "PATCH", f"/resources/qemu/{vmid}", {"status": "running"})
        with daemon(daemon_config(sim, Path(tmp))) as url:
            stop_by(sim, 100, "alice@pve")
            sim_call(sim, "PATCH", "/resources/qemu/101", {"status": "stopped"})  # a crash

            def both() -> bool:
                found = api(url, "/api/v1/events", type="guest.stopped")["events"]
                return len(found) == 2

            wait_for(both, what="the two stops")
            wait_for(lambda: api(url, "/api/v1/deliveries")["sinks"][1]["dead"] == 2, what="dead")
            with browser(900, 1150) as driver:
                driver.get(url + "/")
                driver.execute_script("document.querySelector('details.event').open = true;")
                out.write_bytes(driver.get_screenshot_as_png())
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/status-page.png"))
