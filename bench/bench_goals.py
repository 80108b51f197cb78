"""The server bench's goals table and its report (``server_bench.py``).

Each :class:`Goal` is one line of issue 16's goals table: which figure, of
which server, compared with which (lean, the Flask floor, tus, or nothing for
an absolute figure), and the target. :func:`report` prints every goal measured
as median [min-max] over the rounds, each ratio as the median [min-max] of
the per-round ratios, and PASS/MISS.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from bench_work import Figures


@dataclass(frozen=True)
class Goal:
    """One line of the goals table: a figure, compared with whom, and the target."""

    label: str
    key: str
    workload: str
    ours: str  # the server measured: "ours", "ours-nd" (or "floor", for info)
    versus: str | None  # "lean", "floor", "tus" or None (an absolute figure)
    target: str  # ">= 0.8" / "<= 1.5" on the ratio, or on the value if absolute
    fmt: str = ".0f"


GOALS = [
    Goal(
        "small object round trip ops/s, durable",
        "small_ops",
        "small",
        "ours",
        "lean",
        ">= 0.65",
    ),
    Goal(
        "small object round trip ops/s, not durable",
        "small_ops",
        "small",
        "ours-nd",
        "lean",
        ">= 0.8",
    ),
    Goal(
        "small object: server CPU ms per op, durable",
        "small_cpu_ms",
        "small",
        "ours",
        "lean",
        "<= 1.5",
        ".2f",
    ),
    Goal(
        "small object: server CPU ms per op, not durable",
        "small_cpu_ms",
        "small",
        "ours-nd",
        "lean",
        "<= 1.5",
        ".2f",
    ),
    Goal(
        "10,000 parts of 16 B, parts/s", "tiny_parts", "tiny", "ours", "lean", ">= 0.7"
    ),
    # Where the per-request rows stand against Flask itself (bench/flask_floor.py).
    Goal(
        "Flask floor: small object ops/s",
        "small_ops",
        "small",
        "floor",
        "lean",
        "(info)",
    ),
    Goal(
        "Flask floor: small object CPU ms per op",
        "small_cpu_ms",
        "small",
        "floor",
        "lean",
        "(info)",
        ".2f",
    ),
    Goal(
        "Flask floor: 10,000 parts of 16 B, parts/s",
        "tiny_parts",
        "tiny",
        "floor",
        "lean",
        "(info)",
    ),
    Goal(
        "small object CPU ms per op, not durable, vs Flask floor",
        "small_cpu_ms",
        "small",
        "ours-nd",
        "floor",
        "(info)",
        ".2f",
    ),
    Goal(
        "single stream MiB/s (vs tus)", "stream_mibs", "stream", "ours", "tus", ">= 0.8"
    ),
    Goal(
        "single stream MiB/s (vs lean)",
        "stream_mibs",
        "stream",
        "ours",
        "lean",
        "(info)",
    ),
    Goal(
        "parts only MiB/s, 4 client threads",
        "parts4_mibs",
        "parts4",
        "ours",
        "lean",
        ">= 0.95",
    ),
    Goal(
        "parts only MiB/s, 25 client threads",
        "parts25_mibs",
        "parts25",
        "ours",
        "lean",
        ">= 1.0",
    ),
    Goal(
        "GET server CPU s/GiB, single-part",
        "get_single_cpu",
        "single",
        "ours",
        "lean",
        "<= 1.1",
        ".3f",
    ),
    Goal(
        "GET server CPU s/GiB, multi-part",
        "get_multi_cpu",
        "parts25",
        "ours",
        "lean",
        "<= 1.1",
        ".3f",
    ),
    Goal(
        "GET server CPU s/GiB, ranges",
        "get_range_cpu",
        "parts25",
        "ours",
        "lean",
        "<= 1.1",
        ".3f",
    ),
    Goal(
        "complete of the object ms, another process writing",
        "complete25_ms",
        "parts25",
        "ours",
        None,
        "< 50",
        ".1f",
    ),
    Goal(
        "complete with 10,000 parts ms",
        "tiny_complete_ms",
        "tiny",
        "ours",
        None,
        "< 100",
        ".1f",
    ),
    Goal(
        "mpu-listparts of 10,000 parts ms",
        "tiny_list_ms",
        "tiny",
        "ours",
        None,
        "< 40",
        ".1f",
    ),
    Goal(
        "100-byte range of the 10,000-part object ms",
        "tiny_range_ms",
        "tiny",
        "ours",
        None,
        "(info)",
        ".1f",
    ),
    Goal(
        "delete of the 10,000-part object ms (answer)",
        "tiny_delete_ms",
        "tiny",
        "ours",
        None,
        "(info)",
        ".1f",
    ),
    Goal(
        "peak RSS MiB per worker, 25 client threads",
        "parts25_rss",
        "parts25",
        "ours",
        "lean",
        "<= 0.8",
    ),
    Goal(
        "server CPU s/GiB uploaded (parts), 25 threads",
        "parts25_cpu",
        "parts25",
        "ours",
        "lean",
        "<= 1.0",
        ".2f",
    ),
    Goal(
        "GET MiB/s, multi-part, 1 stream",
        "get_multi_mibs",
        "parts25",
        "ours",
        "lean",
        "(info)",
    ),
]


# -- the report ---------------------------------------------------------------------


def spread(values: Sequence[float], fmt: str) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return format(values[0], fmt)
    middle, low, high = statistics.median(values), min(values), max(values)
    return f"{middle:{fmt}} [{low:{fmt}}-{high:{fmt}}]"


def passes(value: float, target: str) -> bool | None:
    if target.startswith("("):
        return None
    op, number = target.split()
    limit = float(number)
    return {
        ">=": value >= limit,
        "<=": value <= limit,
        "<": value < limit,
        ">": value > limit,
    }[op]


Results = dict[str, dict[str, list[Figures]]]  # server -> workload -> per round


def values(results: Results, server: str, goal: Goal) -> list[float]:
    return [
        f[goal.key]
        for f in results.get(server, {}).get(goal.workload, [])
        if goal.key in f
    ]


def ratios(a: list[float], b: list[float]) -> list[float]:
    return [x / y for x, y in zip(a, b, strict=False) if y]


def report(results: Results, has_base: bool) -> bool:
    headers = ["figure", "ours", "vs", "ours/vs", "target", ""]
    if has_base:
        headers[4:4] = ["base (before)", "base/vs"]
    rows = []
    ok = True
    for goal in GOALS:
        mine = values(results, goal.ours, goal)
        if not mine:
            continue
        # The baseline's run of the same server: for ours and ours-nd only.
        base = (
            values(results, goal.ours.replace("ours", "base"), goal)
            if goal.ours.startswith("ours")
            else []
        )
        if goal.versus is None:
            versus, mine_cmp, base_cmp = [], mine, base
            vs_text, ratio_text, base_ratio = "-", "-", "-"
        else:
            versus = values(results, goal.versus, goal)
            if not versus:
                continue
            mine_cmp = ratios(mine, versus)
            base_cmp = ratios(base, versus)
            vs_text = f"{goal.versus} {spread(versus, goal.fmt)}"
            ratio_text = spread(mine_cmp, ".2f")
            base_ratio = spread(base_cmp, ".2f")
        verdict = passes(statistics.median(mine_cmp), goal.target) if mine_cmp else None
        ok = ok and verdict is not False
        row = [
            goal.label,
            spread(mine, goal.fmt),
            vs_text,
            ratio_text,
            goal.target,
            "" if verdict is None else ("PASS" if verdict else "MISS"),
        ]
        if has_base:
            row[4:4] = [spread(base, goal.fmt), base_ratio]
        rows.append(row)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return ok
