"""Benchmark mpuflask under gunicorn against the leanest WSGI app doing its bytes.

Run: ``python bench/server_bench.py`` (``--help`` for the knobs; bench/README.md).

In one run it starts, side by side, gunicorn serving

* ``ours``: mpuflask (``wsgi:app``) with durability on, and ``ours-nd`` with it off;
* ``lean``: ``bench/lean_app.py``, a raw WSGI callable doing the same byte work
  (stream + MD5 on PUT, a naive copy of the parts on complete, sendfile on GET)
  and no fsync at all: the yardstick of issue 16's goals;
* ``floor``: ``bench/flask_floor.py``, that same lean app behind one bare Flask
  route (small objects and tiny parts only; not with ``--no-floor``): what the
  framework alone costs per request, the floor of any Flask app on those rows;
* with ``--baseline REV``: mpuflask as it was at git revision REV (``base`` and
  ``base-nd``), so a change is measured before and after in one run;
* with ``--tus-dir DIR``: ``@tus/server`` (Node, ``DIR/server.mjs``), for the
  single stream only,

all with the same ``gunicorn.conf.py`` and the same gthread workers and threads.
Every workload of ``bench_work.py`` runs ``--repeat`` times; within a round each
workload runs on every server in turn (each round starting with the next
server), so neighbours' load hits all of them alike and each ratio is taken
between runs minutes apart at most. It prints every figure of the goals table
as median [min-max] over the rounds, and each ratio as the median [min-max] of
the per-round ratios. Everything it writes is under one temporary directory,
removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_work  # noqa: E402
from bench_procs import MIB  # noqa: E402
from bench_procs import ROOT  # noqa: E402
from bench_procs import Server  # noqa: E402
from bench_procs import extract_revision  # noqa: E402
from bench_procs import gunicorn_server  # noqa: E402
from bench_procs import tus_server  # noqa: E402
from bench_work import Figures  # noqa: E402
from bench_work import Source  # noqa: E402

WORKLOADS = ("small", "tiny", "stream", "parts25", "parts4", "single")


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


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--size-mib", type=int, default=512, help="object size for the big uploads")
    add("--part-mib", type=int, default=10, help="part size for the big uploads")
    add("--single-mib", type=int, default=256, help="size of the one-part object")
    add("--workers", type=int, default=4, help="gunicorn workers")
    add("--threads", type=int, default=16, help="gunicorn threads per worker")
    add("--repeat", type=int, default=3, help="rounds")
    add(
        "--small-clients", type=int, default=16, help="clients of the small round trips"
    )
    add("--small-ops", type=int, default=400, help="small round trips per run")
    add("--tiny-parts", type=int, default=10000, help="tiny parts per run")
    add("--tiny-clients", type=int, default=16, help="clients sending tiny parts")
    add("--chunk-mib", type=float, default=1.0, help="MPUFLASK_CHUNK_SIZE for all apps")
    add(
        "--only", default=",".join(WORKLOADS), help="workloads to run (comma-separated)"
    )
    add("--baseline", metavar="REV", help="also run mpuflask of git revision REV")
    add(
        "--tus-dir",
        type=Path,
        help="a directory with server.mjs and @tus/server installed",
    )
    add(
        "--also",
        action="append",
        default=[],
        metavar="MODULE:APP[,NAME=VALUE...]",
        help="also run this app (durable, ours' settings plus the environment)",
    )
    add(
        "--no-floor",
        action="store_true",
        help="leave out the Flask floor (bench/flask_floor.py)",
    )
    add(
        "--ours-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for ours and the --also apps",
    )
    add(
        "--flamegraph",
        type=Path,
        metavar="DIR",
        help="after the rounds, profile ours in each workload (py-spy: DIR/<w>.svg)",
    )
    args = parser.parse_args(argv)
    args.only = [w for w in args.only.split(",") if w]
    if unknown := set(args.only) - set(WORKLOADS):
        parser.error(f"--only: unknown workloads {sorted(unknown)}")
    if "single" in args.only and args.single_mib > args.size_mib:
        # The one-part object is cut from the same source as the big uploads.
        parser.error(
            f"--single-mib ({args.single_mib}) must not exceed --size-mib "
            f"({args.size_mib}), or leave out the single workload (--only)"
        )
    return args


@dataclass
class Spec:
    name: str
    kind: str
    app: str
    durable: bool
    env: dict[str, str]
    code_dir: Path = ROOT


def server_specs(args: argparse.Namespace, base_dir: Path | None) -> list[Spec]:
    chunk = str(int(args.chunk_mib * MIB))
    extra = dict(item.split("=", 1) for item in args.ours_env)
    # 16-byte parts must be allowed for the tiny-parts workload.
    common = {"MPUFLASK_CHUNK_SIZE": chunk, "MPUFLASK_MIN_PART_SIZE": "16"}

    def ours(durable: bool) -> dict[str, str]:
        return {**common, "MPUFLASK_DURABLE": "true" if durable else "false", **extra}

    specs = [
        Spec("ours", "ours", "wsgi:app", True, ours(True)),
        Spec("ours-nd", "ours", "wsgi:app", False, ours(False)),
        Spec(
            "lean", "lean", "bench.lean_app:app", False, {**common, "LEAN_DURABLE": "0"}
        ),
    ]
    if not args.no_floor:
        specs.append(
            Spec(
                "floor",
                "floor",
                "bench.flask_floor:app",
                False,
                {**common, "LEAN_DURABLE": "0"},
            )
        )
    if base_dir is not None:
        base_env = {"MPUFLASK_CHUNK_SIZE": chunk, "MPUFLASK_MIN_PART_SIZE": "16"}
        specs.append(
            Spec(
                "base",
                "base",
                "wsgi:app",
                True,
                {**base_env, "MPUFLASK_DURABLE": "true"},
                base_dir,
            )
        )
        specs.append(
            Spec(
                "base-nd",
                "base",
                "wsgi:app",
                False,
                {**base_env, "MPUFLASK_DURABLE": "false"},
                base_dir,
            )
        )
    for index, also in enumerate(args.also):
        app, *settings = also.split(",")
        env = {**ours(True), **dict(item.split("=", 1) for item in settings)}
        specs.append(Spec(f"also-{index + 1}", "also", app, True, env))
    return specs


def runs_on(workload: str, server: Server) -> bool:
    """Which servers a workload runs on: durability off only for small objects;
    tus only for the single stream; the Flask floor for the per-request rows."""
    if server.kind == "tus":
        return workload == "stream"
    if server.kind == "floor":
        return workload in ("small", "tiny")
    if not server.durable and server.kind != "lean":
        return workload == "small"
    return True


def workload_fn(
    name: str, args: argparse.Namespace, source: Source, noise: Path
) -> Callable[[Server], Figures]:
    table: dict[str, Callable[[Server], Figures]] = {
        "small": lambda s: bench_work.small_objects(
            s, args.small_clients, args.small_ops
        ),
        "tiny": lambda s: bench_work.tiny_parts(s, args.tiny_clients, args.tiny_parts),
        "stream": lambda s: bench_work.single_stream(s, source),
        "parts25": lambda s: bench_work.parallel_upload(
            s, source, 25, noise=noise, reads=True
        ),
        "parts4": lambda s: bench_work.parallel_upload(s, source, 4),
        "single": lambda s: bench_work.single_part_get(
            s, source, args.single_mib * MIB
        ),
    }
    return table[name]


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


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# -- profiling ----------------------------------------------------------------------


def flamegraphs(
    server: Server, workloads: dict[str, Callable[[Server], Figures]], out: Path
) -> None:
    """One py-spy flame graph of ``server``'s workers per workload (untimed)."""
    out.mkdir(parents=True, exist_ok=True)
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    for name, work in workloads.items():
        svg = out / f"{name}.svg"
        spy = subprocess.Popen(
            [
                py_spy,
                "record",
                "--subprocesses",
                "--rate",
                "250",
                "--nonblocking",
                "-p",
                str(server.process.pid),
                "-o",
                str(svg),
                "--format",
                "flamegraph",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)
        try:
            work(server)
        finally:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=120)
        print(f"  flame graph of {name}: {svg}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    work_dir = Path(tempfile.mkdtemp(prefix="mpuflask-bench-"))
    try:
        print(
            f"mpuflask server benchmark: gthread {args.workers} workers x "
            f"{args.threads} threads, "
            f"{args.repeat} rounds, workloads {','.join(args.only)}"
        )
        print(
            f"objects {args.size_mib} MiB in {args.part_mib} MiB parts, one-part "
            f"{args.single_mib} MiB; "
            f"{os.cpu_count()} CPUs; load average at start {load_average()}"
        )
        base_dir = (
            extract_revision(args.baseline, work_dir / "baseline")
            if args.baseline
            else None
        )
        source = bench_work.make_source(args.size_mib * MIB, args.part_mib * MIB)
        noise = work_dir / "noise.bin"
        works = {w: workload_fn(w, args, source, noise) for w in args.only}
        results: Results = {}
        with ExitStack() as stack:
            servers = []
            for spec in server_specs(args, base_dir):
                servers.append(
                    stack.enter_context(
                        gunicorn_server(
                            spec.name,
                            spec.kind,
                            spec.app,
                            work_dir,
                            durable=spec.durable,
                            workers=args.workers,
                            threads=args.threads,
                            env=spec.env,
                            code_dir=spec.code_dir,
                        )
                    )
                )
            if args.tus_dir is not None:
                servers.append(
                    stack.enter_context(tus_server("tus", args.tus_dir, work_dir))
                )
            for server in servers:
                if server.kind != "tus":
                    bench_work.verify(server, source)
            for rnd in range(args.repeat):
                for workload, work in works.items():
                    shift = rnd % len(servers)
                    for server in servers[shift:] + servers[:shift]:
                        if not runs_on(workload, server):
                            continue
                        # Earlier phases' dirty pages are not written back in this one.
                        os.sync()
                        figures = work(server)
                        results.setdefault(server.name, {}).setdefault(
                            workload, []
                        ).append(figures)
                        shown = ", ".join(f"{k} {v:.3g}" for k, v in figures.items())
                        print(
                            f"  round {rnd + 1} {workload:<8} {server.name:<8} {shown}",
                            flush=True,
                        )
                print(
                    f"  load average after round {rnd + 1}: {load_average()}",
                    flush=True,
                )
            print()
            print(
                f"median [min-max] over {args.repeat} rounds; ratios: median "
                "[min-max] of the per-round "
                "ratios; lean does not fsync; CPU = server processes' user + system"
            )
            ok = report(results, base_dir is not None)
            print(f"load average at the end: {load_average()}")
            if args.flamegraph is not None:
                ours = next(s for s in servers if s.name == "ours")
                flamegraphs(ours, works, args.flamegraph)
        return 0 if ok else 1
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
