"""The events crash harness, long form (issue 15): many SIGKILLs, no event lost.

Run from the repository root::

    .venv/bin/python bench/events_crash.py               # 100 kills
    .venv/bin/python bench/events_crash.py --kills 300 --seed 7 --workers 4

It runs gunicorn (our ``gunicorn.conf.py``, durable) with the webhook pointed
at a receiver on loopback that answers 500 to ``--fail-rate`` of deliveries,
stalls past the webhook's timeout on ``--stall-rate`` of them, and restarts
every ``--receiver-restart-every`` kills. ``--clients`` threads publish,
overwrite, abort and delete; after a random number of acknowledged requests it
SIGKILLs a worker or (every ``--master-every``-th kill) the master with all
its workers, and restarts gunicorn on the same data directory and port. At
the end it resolves cut requests, waits for delivery and checks that every
publish, abort and delete reached the receiver (lost events: 0), that no
event is false, and that duplicates carry the same id and body. The logic
and every check are in ``tests/events_harness.py``.

It prints the figures and exits 1 if any invariant failed. The work directory
is removed unless ``--keep`` is given or the run failed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.events_harness import EventsHarnessConfig  # noqa: E402
from tests.events_harness import run_events_harness  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=100, help="total SIGKILLs")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=8, help="threads per worker")
    parser.add_argument("--clients", type=int, default=6, help="client threads")
    parser.add_argument("--keys", type=int, default=2, help="keys per client")
    parser.add_argument(
        "--master-every", type=int, default=3, help="every N-th kill is the master's"
    )
    parser.add_argument("--min-progress", type=int, default=3)
    parser.add_argument("--max-progress", type=int, default=20)
    parser.add_argument("--fail-rate", type=float, default=0.2)
    parser.add_argument("--stall-rate", type=float, default=0.05)
    parser.add_argument("--receiver-restart-every", type=int, default=4)
    parser.add_argument(
        "--duration", type=float, default=1800.0, help="time budget, seconds"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="mpuflask-events-crash-"))
    config = EventsHarnessConfig(
        workdir=workdir,
        seed=args.seed,
        kills=args.kills,
        master_every=args.master_every,
        workers=args.workers,
        threads=args.threads,
        clients=args.clients,
        keys_per_client=args.keys,
        progress=(args.min_progress, args.max_progress),
        fail_rate=args.fail_rate,
        stall_rate=args.stall_rate,
        receiver_restart_every=args.receiver_restart_every,
        duration=args.duration,
        delivery_wait=180.0,
    )
    report = run_events_harness(config)
    print(report.format(details=20))
    if args.keep or not report.ok:
        print(f"work directory kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
