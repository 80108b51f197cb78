"""The load bench's measuring and report: CPU from /proc, the server's own
request counts, latency percentiles (``load_bench.py``)."""

from __future__ import annotations

import argparse
import http.client
import math
import os
from collections import Counter
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from load_client import ACTIONS
from load_client import OPERATIONS
from load_client import ErrorLog
from load_content import MiB
from load_operations import LoadClient


def process_cpu(pids: Sequence[int]) -> float:
    """CPU seconds (user + system) used so far by these live processes."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def all_processes() -> dict[int, tuple[str, float]]:
    """Every process's (command, CPU seconds so far), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        found[int(entry.name)] = (name, (int(fields[11]) + int(fields[12])) / ticks)
    return found


def busiest_others(
    before: dict[int, tuple[str, float]],
    after: dict[int, tuple[str, float]],
    ours: set[int],
) -> list[tuple[str, float]]:
    """The other processes that used the most CPU between two snapshots."""
    used: dict[str, float] = defaultdict(float)
    for pid, (name, seconds) in after.items():
        if pid not in ours:
            used[name] += seconds - before.get(pid, (name, 0.0))[1]
    return [
        (name, seconds)
        for name, seconds in sorted(used.items(), key=lambda i: -i[1])[:4]
        if seconds >= 0.1
    ]


def machine_cpu() -> tuple[float, float, float]:
    """(busy, iowait, total) CPU seconds of the machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle, iowait = values[3], values[4]
    total = sum(values[:8])
    return (total - idle - iowait) / ticks, iowait / ticks, total / ticks


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted values."""
    index = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[index]


def scrape_metrics(port: int) -> dict[str, float]:
    """Requests counted by the server (all workers), by status class."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/?action=metrics")
        response = conn.getresponse()
        text = response.read().decode()
    except (OSError, http.client.HTTPException):
        return {}
    finally:
        conn.close()
    if response.status != 200:
        return {}
    counts: dict[str, float] = defaultdict(float)
    for line in text.splitlines():
        if line.startswith("mpuflask_requests_total{") and 'status="' in line:
            status = line.split('status="', 1)[1][0]
            counts[f"{status}xx"] += float(line.rsplit(" ", 1)[1])
    return counts


def report(
    args: argparse.Namespace,
    clients: Sequence[LoadClient],
    errors: ErrorLog,
    *,
    wall: float,
    client_cpu: float,
    server_cpu: float,
    machine: tuple[float, float, float],
    metrics: dict[str, float],
    others: list[tuple[str, float]],
    objects: int,
    stored_bytes: int,
    restarts: list[int],
) -> None:
    latencies: dict[str, list[float]] = defaultdict(list)
    operations: Counter[str] = Counter()
    for client in clients:
        for action, values in client.stats.latencies.items():
            latencies[action].extend(values)
        operations.update(client.stats.operations)
    errors_by_action = Counter(action for action, _, _ in errors.entries)
    up = sum(c.stats.bytes_up for c in clients)
    down = sum(c.stats.bytes_down for c in clients)
    total = sum(len(v) for v in latencies.values())
    negatives = sum(len(v) for a, v in latencies.items() if a.startswith("neg-"))

    print(
        f"\nran {wall:.1f} s; operations: "
        + ", ".join(f"{name} {operations[name]}" for name in OPERATIONS)
    )
    print(
        f"\n{'action':<15}{'requests':>9}{'errors':>7}"
        f"{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}"
    )
    for action in ACTIONS:
        values = sorted(latencies.get(action, []))
        if not values and not errors_by_action[action]:
            continue
        cells = [
            f"{percentile(values, q) * 1000:9.1f}" if values else f"{'-':>9}"
            for q in (0.5, 0.9, 0.99, 1.0)
        ]
        print(
            f"{action:<15}{len(values):>9}{errors_by_action[action]:>7}"
            + "".join(cells)
        )
    print(f"{'total':<15}{total:>9}{len(errors.entries):>7}")

    print(
        f"\nERRORS: {len(errors.entries)}"
        f" (intentional negatives answered as expected: {negatives})"
    )
    for action, request_id, text in errors.entries[:30]:
        print(f"  [{action}] request {request_id}: {text[:600]}")
    if len(errors.entries) > 30:
        print(f"  ... and {len(errors.entries) - 30} more")

    print(
        f"\nthroughput: {total / wall:.1f} requests/s;"
        f" up {up / MiB:.0f} MiB = {up / MiB / wall:.1f} MiB/s;"
        f" down {down / MiB:.0f} MiB = {down / MiB / wall:.1f} MiB/s"
    )
    busy, iowait, span = machine
    cpus = os.cpu_count() or 1
    other = busy - client_cpu - server_cpu

    def share(seconds: float) -> str:
        cores = seconds / wall
        return (
            f"{seconds:6.1f} CPU-s = {cores:4.2f} cores = {100 * seconds / span:3.0f}%"
        )

    print(f"\nCPU during the run ({cpus} CPUs, {span:.0f} CPU-s in all):")
    print(f"  {'client (this process)':<36}{share(client_cpu)}")
    print(f"  {'server (gunicorn master + workers)':<36}{share(server_cpu)}")
    print(f"  {'everything else (others, kernel)':<36}{share(other)}")
    if others:
        busiest = ", ".join(f"{name} {seconds:.1f}" for name, seconds in others)
        print(f"    busiest other processes (CPU-s): {busiest}")
    print(f"  machine busy {100 * busy / span:.0f}%, iowait {100 * iowait / span:.0f}%")
    statuses = ", ".join(f"{k} {v:.0f}" for k, v in sorted(metrics.items()))
    print(
        f"\nserver: requests its metrics counted during the run (plus one scrape):"
        f" {statuses or 'unavailable'}; worker pids changed: {restarts or 'none'};"
        f" {objects} objects left, {stored_bytes / MiB:.0f} MiB in the data dir"
    )
