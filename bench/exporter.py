"""Benchmark 4, side by side with prometheus-pve-exporter (from PyPI, in the bench's own
virtualenv): one exporter scrape vs one pvewatch poll of the same simulated cluster, at
1,000 and 10,000 guests — CPU per cycle (user + sys of each process tree, from
/proc), API requests per cycle (the simulator's own count), RSS; then one /metrics scrape
of pvewatch vs one exporter scrape. Same machine, same run, interleaved: exporter scrape,
pvewatch poll, pvewatch scrape, exporter scrape, ...

    python -m bench.exporter [--sizes 1000,10000] [--rounds 5]

The exporter runs with the cluster collectors the simulator can serve (status, version,
node, cluster, resources; not backup-info, qdevice nor the node collectors, which call
endpoints the simulator does not have: `cluster=1&node=0`). pvewatch is `bench.worker`
(the daemon's components) with its /metrics listener.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    TOKEN,
    Sim,
    Worker,
    free_port,
    machine,
    median,
    proc_cpu_secs,
    proc_rss_mb,
    scratch_dir,
    simulator,
    write_config,
    write_json,
)

EXPORTER_FLAGS = ("--collector.backup-info", "--collector.qdevice")


def tree(pid: int) -> list[int]:
    """A process and its descendants (gunicorn's master and worker)."""
    pids, found = [pid], [pid]
    while found:
        children = []
        for p in found:
            for task in Path(f"/proc/{p}/task").iterdir():
                children += [int(c) for c in (task / "children").read_text().split()]
        pids += children
        found = children
    return pids


def tree_cpu(pid: int) -> float:
    return sum(proc_cpu_secs(p) for p in tree(pid))


def tree_rss(pid: int) -> float:
    return sum(proc_rss_mb(p) for p in tree(pid))


def api_requests(sim: Sim) -> int:
    with sim.control() as c:
        paths = c.get("/stats").json()["paths"]
    return sum(n for path, n in paths.items() if "/api2/json" in path)


def start_exporter(sim: Sim, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    user, _, rest = TOKEN.partition("!")
    name, _, value = rest.partition("=")
    port = sim.url.rsplit(":", 1)[1]
    config = tmp / "pve.yml"
    config.write_text(
        f"default:\n  user: '{user}'\n  token_name: '{name}'\n  token_value: '{value}'\n"
        f"  verify_ssl: false\n  port: {port}\n"
    )
    listen = free_port()
    exe = Path(sys.executable).parent / "pve_exporter"
    disabled = [flag.replace("--", "--no-", 1) for flag in EXPORTER_FLAGS]
    proc = subprocess.Popen(
        [
            str(exe),
            "--config.file",
            str(config),
            "--web.listen-address",
            f"127.0.0.1:{listen}",
            *disabled,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{listen}/pve?target=127.0.0.1&cluster=1&node=0"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{listen}/metrics", timeout=1)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("prometheus-pve-exporter did not start")


def measured(cpu_secs: Any, sim: Sim, action: Any) -> dict[str, float]:
    """CPU (from `cpu_secs()`), wall time and API requests across `action()`."""
    cpu, requests, started = cpu_secs(), api_requests(sim), time.perf_counter()
    out = action()
    return {
        "cpu_ms": (cpu_secs() - cpu) * 1000,
        "wall_ms": (time.perf_counter() - started) * 1000,
        "requests": api_requests(sim) - requests,
        "bytes": float(len(out)) if isinstance(out, bytes) else 0.0,
    }


def compare(guests: int, rounds: int) -> dict[str, Any]:
    with simulator(guests) as sim, scratch_dir() as tmp:
        exporter, scrape_url = start_exporter(sim, tmp)
        config = write_config(tmp, sim, listen="127.0.0.1:0")
        try:
            with Worker(config) as worker, httpx.Client(timeout=120) as http:
                metrics_url = worker.ask("stats")["metrics_url"] + "/metrics"
                worker.ask("poll")  # the baseline
                http.get(scrape_url).raise_for_status()  # warm both up
                worker.ask("poll")
                http.get(metrics_url).raise_for_status()
                rows: dict[str, list[dict[str, float]]] = {"exporter": [], "poll": [], "scrape": []}

                # The exporter's CPU from /proc (10 ms ticks: its scrapes are long); the
                # worker's from its own getrusage (microseconds), asked before and after.
                def exporter_cpu() -> float:
                    return tree_cpu(exporter.pid)

                def worker_cpu() -> float:
                    return float(worker.ask("cpu")["cpu_s"])

                for _ in range(rounds):
                    rows["exporter"].append(
                        measured(exporter_cpu, sim, lambda: http.get(scrape_url).content)
                    )
                    rows["poll"].append(measured(worker_cpu, sim, lambda: worker.ask("poll")))
                    rows["scrape"].append(
                        measured(worker_cpu, sim, lambda: http.get(metrics_url).content)
                    )
                rss = {"exporter": tree_rss(exporter.pid), "pvewatch": proc_rss_mb(worker.pid)}
                series = {
                    "exporter": _series(http.get(scrape_url).text),
                    "pvewatch": _series(http.get(metrics_url).text),
                }
        finally:
            exporter.terminate()
            exporter.wait()
    summary = {k: {f: median([r[f] for r in v]) for f in v[0]} for k, v in rows.items()}
    return {"guests": guests, "rounds": rounds, **summary, "rss_mb": rss, "series": series}


def _series(text: str) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| guests | | CPU per cycle | wall | API requests | RSS | series "
        "| exporter CPU / pvewatch CPU |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        e, p, s = r["exporter"], r["poll"], r["scrape"]
        rows = (
            ("exporter scrape", e, r["rss_mb"]["exporter"], r["series"]["exporter"], ""),
            (
                "pvewatch poll",
                p,
                r["rss_mb"]["pvewatch"],
                "",
                f"**{e['cpu_ms'] / p['cpu_ms']:.0f}x**",
            ),
            (
                "pvewatch /metrics scrape",
                s,
                None,
                r["series"]["pvewatch"],
                f"**{e['cpu_ms'] / s['cpu_ms']:.0f}x**",
            ),
        )
        for label, m, rss, series, ratio in rows:
            rss_text = f"{rss:.0f} MB" if rss is not None else "(same process)"
            series_text = f"{series:,}" if series != "" else ""
            lines.append(
                f"| {r['guests']:,} | {label} | {m['cpu_ms']:.1f} ms | {m['wall_ms']:.0f} ms "
                f"| {m['requests']:.0f} | {rss_text} | {series_text} | {ratio} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results = []
    for guests in (int(s) for s in args.sizes.split(",")):
        results.append(compare(guests, args.rounds))
        print(json.dumps(results[-1]), flush=True)
    write_json("exporter", {"machine": machine(), "args": vars(args), "results": results})
    print(table(results))


if __name__ == "__main__":
    main()
