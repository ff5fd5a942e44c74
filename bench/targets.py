"""The targets of issue 17 against the figures of the last runs (bench/results/*.json):
one row per target, the figure measured, the floor or the exporter it is compared with in
the same run, and whether it is met. Rendered into bench/RESULTS.md by `bench.report`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Results = dict[str, Any]  # benchmark name → its JSON (machine, args, results)


def _by(results: Results, name: str, key: str, value: object) -> dict[str, Any] | None:
    rows = results.get(name, {}).get("results", [])
    return next((r for r in rows if r.get(key) == value), None)


def _poll(results: Results, guests: int) -> tuple[str, str, bool] | None:
    r = _by(results, "poll", "guests", guests)
    if r is None:
        return None
    cpu, floor = r["quiet"]["cpu_ms"], r["floor"]["msgspec_ms"]
    return (f"{cpu:.1f} ms, **{cpu / floor:.1f}x**", f"{floor:.1f} ms", cpu <= 2 * floor)


def _exporter(results: Results, guests: int) -> tuple[str, str, bool] | None:
    r = _by(results, "exporter", "guests", guests)
    if r is None:
        return None
    exporter, poll = r["exporter"]["cpu_ms"], r["poll"]["cpu_ms"]
    ratio = exporter / poll
    return (f"{poll:.1f} ms, **{ratio:.0f}x** less", f"exporter {exporter:.0f} ms", ratio >= 50)


def _rss(results: Results, guests: int, limit: float) -> tuple[str, str, bool] | None:
    r = _by(results, "poll", "guests", guests)
    if r is None:
        return None
    after, peak = r["quiet"]["rss_mb"], r["peak_rss_mb"]
    floor = r["floor"]["body_bytes"] / 1e6
    return (f"**{after:.0f} / {peak:.0f} MB**", f"body {floor:.1f} MB", peak <= limit)


def _latency(results: Results) -> tuple[str, str, bool] | None:
    rows = results.get("latency", {}).get("results", [])
    if not rows:
        return None
    p99 = max(r["processing_p99_ms"] for r in rows)
    polls = ", ".join(f"{r['poll_wall_p50_ms']:.0f}" for r in rows)
    return (f"**{p99:.0f} ms**", f"poll wall p50 {polls} ms", p99 < 50)


def _deliveries(results: Results) -> tuple[str, str, bool] | None:
    r = _by(results, "delivery", "slow_beside", False)
    if r is None:
        return None
    rate = r["events_per_s"]
    return (f"**{rate:,.0f}/s**", f"{r['cpu_ms_per_event']:.2f} ms CPU each", rate >= 1000)


def _fifty_cpu(results: Results) -> tuple[str, str, bool] | None:
    r = _by(results, "poll", "guests", 50_000)
    if r is None:
        return None
    cpu, floor = r["quiet"]["cpu_ms"], r["floor"]["msgspec_ms"]
    return (f"{cpu:.0f} ms, **{cpu / floor:.1f}x**", f"{floor:.1f} ms", cpu <= 2 * floor)


def _fifty_peak(results: Results) -> tuple[str, str, bool] | None:
    r = _by(results, "poll", "guests", 50_000)
    if r is None:
        return None
    peak, body = r["peak_rss_mb"], r["floor"]["body_bytes"] / 1e6
    return (f"**{peak:.0f} MB**", f"body {body:.1f} MB", peak <= 300)


ROWS: list[tuple[str, str, Callable[[Results], tuple[str, str, bool] | None]]] = [
    ("10,000 guests: CPU of a quiet poll vs the msgspec floor", "≤ 2x", lambda r: _poll(r, 10_000)),
    ("1,000 guests: exporter CPU / pvewatch CPU a cycle", "≥ 50x", lambda r: _exporter(r, 1_000)),
    ("10,000 guests: exporter CPU / pvewatch CPU a cycle", "≥ 50x", lambda r: _exporter(r, 10_000)),
    ("10,000 guests: RSS after the polls / peak", "≤ 80 MB", lambda r: _rss(r, 10_000, 80)),
    ("10,000 guests: answer → webhook sent, p99", "< 50 ms", _latency),
    ("signed deliveries per second, local receiver", "≥ 1,000/s", _deliveries),
    ("50,000 guests: CPU of a quiet poll vs the msgspec floor", "≤ 2x", _fifty_cpu),
    ("50,000 guests: peak RSS", "≤ 300 MB", _fifty_peak),
]


def table(results: Results) -> str:
    lines = [
        "| target (issue 17) | this run | compared with (same run) | target | met |",
        "|---|---|---|---|---|",
    ]
    for what, target, measure in ROWS:
        found = measure(results)
        if found is None:
            lines.append(f"| {what} | (not run) | | {target} | |")
            continue
        figure, against, met = found
        lines.append(f"| {what} | {figure} | {against} | {target} | {'yes' if met else 'no'} |")
    loads = [
        f"{name} {r['machine']['load_1m'][0]:.2f} → {r['machine']['load_1m'][1]:.2f}"
        for name, r in sorted(results.items())
        if "load_1m" in r.get("machine", {})
    ]
    if loads:
        lines += ["", f"Load average (1 min) at the start and end of each: {', '.join(loads)}."]
    return "\n".join(lines)
