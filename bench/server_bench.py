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
from bench_goals import Results  # noqa: E402
from bench_goals import report  # noqa: E402
from bench_procs import MIB  # noqa: E402
from bench_procs import ROOT  # noqa: E402
from bench_procs import Server  # noqa: E402
from bench_procs import extract_revision  # noqa: E402
from bench_procs import gunicorn_server  # noqa: E402
from bench_procs import tus_server  # noqa: E402
from bench_procs import wait_until_quiet  # noqa: E402
from bench_work import Figures  # noqa: E402
from bench_work import Source  # noqa: E402

WORKLOADS = ("small", "tiny", "stream", "parts25", "parts4", "single")


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
                        # Earlier phases' dirty pages are not written back in
                        # this one, nor their clean-up done during it.
                        os.sync()
                        wait_until_quiet()
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
