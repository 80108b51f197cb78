"""The crash harness, long form (issue 6, item 1): hundreds of SIGKILLs, figures.

Run from the repository root::

    .venv/bin/python bench/crash_harness.py               # 200 kills
    .venv/bin/python bench/crash_harness.py --kills 400 --seed 7 --workers 4

It runs gunicorn (our ``gunicorn.conf.py``, durability on, 64 KiB minimum
parts) on a data directory under a temporary directory, drives ``--clients``
threads that upload, overwrite, delete and read ``--keys`` shared keys, and
SIGKILLs a worker or (every ``--master-every``-th kill, and the last) the
master with all its workers, after a random number of acknowledged requests
plus a random delay of up to ``--jitter-ms``. After each master kill it
restarts gunicorn on the same data directory and port and checks that no
acknowledged write or part is lost, no read was torn or stale, and the
start-up sweep left no temp file; at the end our own sweep must leave nothing
either. The logic and every check are in ``tests/crash/``.

It prints the figures (kills, acknowledged operations, lost writes, torn reads,
leftovers: the last three must be 0) and exits 1 if any invariant failed. The
work directory (data and gunicorn's log) is removed unless ``--keep`` is given
or the run failed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.crash.harness import run_harness  # noqa: E402
from tests.crash.report import HarnessConfig  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=200, help="total SIGKILLs")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=8, help="threads per worker")
    parser.add_argument("--clients", type=int, default=12, help="client threads")
    parser.add_argument("--keys", type=int, default=8, help="shared object keys")
    parser.add_argument(
        "--master-every", type=int, default=4, help="every N-th kill is the master's"
    )
    parser.add_argument(
        "--min-progress",
        type=int,
        default=5,
        help="acknowledged requests per kill, at least",
    )
    parser.add_argument(
        "--max-progress",
        type=int,
        default=40,
        help="acknowledged requests per kill, at most",
    )
    parser.add_argument(
        "--jitter-ms", type=float, default=50.0, help="extra random delay before a kill"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=1800.0,
        help="time budget in seconds; then a last master kill and the checks",
    )
    parser.add_argument("--min-part", type=int, default=64 * 1024)
    parser.add_argument(
        "--workdir", type=Path, help="default: a new temporary directory"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--details", type=int, default=10, help="violations shown per kind"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mpuflask-crash-"))
    workdir.mkdir(parents=True, exist_ok=True)
    config = HarnessConfig(
        workdir=workdir,
        seed=args.seed,
        kills=args.kills,
        master_every=args.master_every,
        workers=args.workers,
        threads=args.threads,
        clients=args.clients,
        keys=args.keys,
        min_part=args.min_part,
        progress=(args.min_progress, args.max_progress),
        jitter=args.jitter_ms / 1000,
        duration=args.duration,
    )
    print(f"work directory: {workdir}", flush=True)
    report = run_harness(config)
    print(report.format(details=args.details), flush=True)
    if report.ok and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"kept: {workdir} (gunicorn's log: {workdir / 'gunicorn-all.log'})")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
