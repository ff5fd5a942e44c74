"""What every benchmark shares: a `pvewatch simulate` process on loopback, CPU and RSS
readings of the measured process, percentiles and the machine's description.

The simulator always runs as a separate process, so that its CPU never counts as
pvewatch's; pvewatch is measured with `resource.getrusage` deltas of its own process.
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

# Each benchmark is its own process: the machine's load when it started, and its clock.
LOAD_AT_START = os.getloadavg()[0]
STARTED_AT = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
TOKEN = "pvewatch@pve!bench=0b7e3c1a-5d2f-4e8a-9c6b-1f2e3d4c5b6a"  # noqa: S105 (the simulator's)
ROOT = Path(__file__).resolve().parent.parent
GUESTS_PER_NODE = 100  # a big node runs 100 or so guests


@dataclass(frozen=True)
class Sim:
    url: str
    fingerprint: str | None
    pid: int

    def control(self) -> httpx.Client:
        """A client for the simulator's /_sim/ control API."""
        return httpx.Client(base_url=f"{self.url}/_sim", verify=False, timeout=60)  # noqa: S501

    def api(self) -> httpx.Client:
        """A plain client of the simulated API, for fetching bodies outside pvewatch."""
        headers = {"Authorization": f"PVEAPIToken={TOKEN}"}
        return httpx.Client(
            base_url=f"{self.url}/api2/json",
            headers=headers,
            verify=False,  # noqa: S501 (the simulator's own certificate)
            timeout=60,
        )


def nodes_for(guests: int) -> int:
    return max(3, guests // GUESTS_PER_NODE)


@contextmanager
def simulator(guests: int, *, nodes: int | None = None, tls: bool = True) -> Iterator[Sim]:
    """`pvewatch simulate` in its own process on a free loopback port, without churn."""
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "pvewatch",
        "simulate",
        "--listen",
        f"127.0.0.1:{port}",
        "--guests",
        str(guests),
        "--nodes",
        str(nodes or nodes_for(guests)),
        "--seed",
        "8",
        "--token",
        TOKEN,
    ]
    if not tls:
        args.append("--no-tls")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        banner = ""
        for line in proc.stdout:
            banner += line
            if "control:" in line and not tls:
                break
            if "fingerprint:" in line:
                break
        url = re.search(r"api:\s+(\S+)/api2/json", banner)
        fingerprint = re.search(r"fingerprint:\s+(\S+)", banner)
        if url is None:
            raise RuntimeError(f"the simulator did not start: {banner!r}")
        yield Sim(url[1], fingerprint[1] if fingerprint else None, proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def scratch_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pvewatch-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def cpu_secs() -> float:
    """user + sys of this process (every thread) so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_rss_mb() -> float:
    """The peak resident set of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_cpu_secs() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def proc_cpu_secs(pid: int) -> float:
    """user + sys of another process so far, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def proc_rss_mb(pid: int, field: str = "VmRSS") -> float:
    """VmRSS (now) or VmHWM (peak) of another process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def machine() -> dict[str, Any]:
    """Cores, CPU model and Python, for the results."""
    model = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "system": f"{platform.system()} {platform.release()}",
        # The 1-minute load average (the benchmark's own processes included) when the
        # benchmark started and when it ended, and when it ran.
        "load_1m": [LOAD_AT_START, os.getloadavg()[0]],
        "ran": [STARTED_AT, time.strftime("%H:%M:%S UTC", time.gmtime())],
    }


def write_config(
    tmp: Path,
    sim: Sim,
    *,
    sinks: str = "",
    listen: str | None = None,
    interval_secs: float = 10,
    extra: str = "",
) -> Path:
    """A watch.yaml for one cluster (the simulator, its certificate pinned), a store in
    `tmp`, `sinks` (YAML, indented by 2) or a JSON log into `tmp`. Holds are off: the
    benchmarks measure the machinery, not a deliberate wait."""
    tls = f"tls: {{fingerprint: '{sim.fingerprint}'}}" if sim.fingerprint else "tls: {}"
    sinks = sinks or f"  log: {{type: log, format: json, path: '{tmp / 'events.jsonl'}'}}"
    text = f"""\
clusters:
  - name: bench
    endpoints: ["{sim.url}"]
    token: "{TOKEN}"
    {tls}
    interval_secs: {interval_secs}
    timeout_secs: 60
store:
  path: {tmp / "state.db"}
http:
  listen: {json.dumps(listen)}
log: {{level: warning}}
rules:
  shape: {{hold: false}}
sinks:
{sinks}
{extra}"""
    path = tmp / "watch.yaml"
    path.write_text(text)
    return path


class Worker:
    """A `bench.worker` process: pvewatch's components, polling when asked."""

    def __init__(self, config: Path, tree: Path = ROOT) -> None:
        """`tree`: the checkout whose pvewatch runs (another one: `bench.compare`)."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.worker", str(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=tree,
        )
        self.pid = self.proc.pid

    def ask(self, cmd: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the worker exited ({self.proc.wait()}) on {cmd!r}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def guest_ids(sim: Sim, status: str = "running") -> list[str]:
    """The guests of the simulated cluster in that status (templates left out)."""
    with sim.control() as c:
        rows = c.get("/resources").json()
    rows = rows["data"] if isinstance(rows, dict) else rows
    return [
        r["id"]
        for r in rows
        if r.get("type") in ("qemu", "lxc") and r.get("status") == status and not r.get("template")
    ]


def flip(control: httpx.Client, guest: str, status: str) -> None:
    """Set a guest's status in the simulator (a change pvewatch should report)."""
    control.patch(f"/resources/{guest}", json={"status": status}).raise_for_status()


def write_json(name: str, data: Any) -> Path:
    """bench/results/NAME.json, for bench.report."""
    out = ROOT / "bench" / "results" / f"{name}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(data, indent=1) + "\n")
    return out


class Process:
    """A benchmark helper process whose stdout JSON lines are collected as they come."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self.pid = self.proc.pid
        self.first = self.proc.stdout.readline() if self.proc.stdout else ""
        self._lines: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self._lines.append(json.loads(line))

    def lines(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._lines)

    def wait_for(self, condition: Any, *, timeout: float, what: str) -> Any:
        """Until `condition(lines)` is truthy; fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not (value := condition(self.lines())):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise TimeoutError(f"no {what} within {timeout}s (exit {self.proc.poll()})")
            time.sleep(0.005)
        return value

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait()

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def receiver(delay_secs: float = 0.0) -> Iterator[tuple[Process, str]]:
    """A `bench.receiver` process and its URL; the receiver is killed at the end."""
    proc = Process("bench.receiver", "--delay-secs", str(delay_secs))
    try:
        port = int(proc.first.split()[1])
        yield proc, f"http://127.0.0.1:{port}/hook"
    finally:
        proc.proc.terminate()
        proc.proc.wait()


def webhook_sink(name: str, url: str, extra: str = "") -> str:
    """A webhook sink (native format, Standard Webhooks signed) as config YAML lines."""
    from tests.e2e.receiver import SECRET

    return f"  {name}: {{type: webhook, url: '{url}', secret: '{SECRET}'{extra}}}\n"
