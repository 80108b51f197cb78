"""The power-loss harness, long form (issue 17): hundreds of power cuts, figures.

Run from the repository root (as root: it mounts a FUSE filesystem; needs
Debian's fuse3 and the test extra's mfusepy)::

    .venv/bin/python bench/power_harness.py                 # 200 cuts
    .venv/bin/python bench/power_harness.py --cuts 400 --seed 7 --workers 4
    .venv/bin/python bench/power_harness.py --no-durable --cuts 50   # finds losses

It mounts a lazy disk (``tests/powerloss/lazyfs.py``: a FUSE filesystem that
forgets, at a cut, every write, rename, link, symlink and unlink that was not
fsynced) on a temporary directory, runs gunicorn (our ``gunicorn.conf.py``,
64 KiB minimum parts) with its data directory on it, and drives ``--clients``
threads that upload, overwrite, delete and read ``--keys`` shared keys. After
a random number of acknowledged requests plus a random delay of up to
``--jitter-ms`` it cuts the power: SIGKILL of the master and every worker, then
the disk drops what was not synced (in a ``--writeback`` share of the cuts it
keeps a random part of it instead, as a disk whose cache was partly written
back), is remounted, and gunicorn restarts on it. Then it checks, against the
clients' record, that every acknowledged part is listed with its etag and size,
every key reads back whole as its last acknowledged write left it (or as a
write the cut interrupted), nothing is torn or half-published, and the start-up
sweep leaves no leftovers. The logic is in ``tests/powerloss/harness.py`` (and
the checks it reuses in ``tests/crash/``).

It prints the figures (cuts, what they dropped, acknowledged parts and keys
checked, losses: 0 with durability on) and exits 1 if any invariant failed or
the server logged an error. The work directory is removed unless ``--keep`` is
given or the run failed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.powerloss.fusefs import lazy_mount_unavailable  # noqa: E402
from tests.powerloss.harness import PowerConfig  # noqa: E402
from tests.powerloss.harness import run_power_harness  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cuts", type=int, default=200, help="power cuts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    parser.add_argument("--clients", type=int, default=6, help="client threads")
    parser.add_argument("--keys", type=int, default=8, help="shared object keys")
    parser.add_argument(
        "--min-progress",
        type=int,
        default=5,
        help="acknowledged requests per cut, at least",
    )
    parser.add_argument(
        "--max-progress",
        type=int,
        default=40,
        help="acknowledged requests per cut, at most",
    )
    parser.add_argument(
        "--jitter-ms", type=float, default=50.0, help="extra random delay before a cut"
    )
    parser.add_argument(
        "--writeback",
        type=float,
        default=0.5,
        help="share of the cuts that keep a random part of the unsynced state",
    )
    parser.add_argument(
        "--no-durable",
        action="store_true",
        help="run the server with MPUFLASK_DURABLE=false",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=3600.0,
        help="time budget in seconds; then a last cut and the checks",
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
    reason = lazy_mount_unavailable()
    if reason is not None:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mpuflask-power-"))
    workdir.mkdir(parents=True, exist_ok=True)
    config = PowerConfig(
        workdir=workdir,
        seed=args.seed,
        kills=args.cuts,
        workers=args.workers,
        threads=args.threads,
        clients=args.clients,
        keys=args.keys,
        min_part=args.min_part,
        progress=(args.min_progress, args.max_progress),
        jitter=args.jitter_ms / 1000,
        duration=args.duration,
        durable=not args.no_durable,
        writeback=args.writeback,
    )
    print(f"work directory: {workdir}", flush=True)
    report = run_power_harness(config)
    print(report.format(details=args.details), flush=True)
    passed = report.ok and not report.log_errors
    if passed and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(
            f"kept: {workdir} (gunicorn's log: {workdir / 'gunicorn-all.log'}, "
            f"the lazy disk's: {workdir / 'store-fuse.log'})"
        )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
