"""Load bench: many concurrent clients against a real gunicorn (issue 6, item 5).

Run from the repository root::

    .venv/bin/python bench/load_bench.py            # 64 clients, 60 s
    .venv/bin/python bench/load_bench.py --help

It starts gunicorn (our ``gunicorn.conf.py``, ``--workers`` x ``--threads``) on
a free 127.0.0.1 port with its data directory in a temporary directory that is
removed afterwards, then runs ``--clients`` threads, each with one keep-alive
``http.client`` connection, until ``--duration`` seconds have passed (or
``--ops`` operations were started). Each client picks operations from a mix:

* small upload: create, 1-3 parts (leading parts exactly the minimum part
  size, a small last part), sometimes listparts, complete;
* large upload: create, 3-5 parts of one size in 5-10 MiB (the last one no
  larger), sent in shuffled order, listparts half-way and at the end, complete;
* get: a whole completed object; range: ``bytes=a-b``, ``bytes=a-`` or
  ``bytes=-n`` of one;
* abort: an upload with a part or two, aborted; then listparts and uploadpart
  on it must answer 10024 (intentional negatives), and a second abort 204;
* delete: a completed object nobody is reading; then its GET must be 404.

Everything is verified: each part's etag is the MD5 of the bytes sent, the
complete's etag is ``md5(part md5s)-N``, listparts lists exactly the parts
sent, GET answers the object's etag, Content-Type, length (Content-Range for
ranges) and the very bytes uploaded, compared as they stream in (1 MiB reads).
Part bodies are slices of one pre-generated random buffer plus a 32-byte tag
unique to (client, upload, part), so every object is distinct while the MD5 of
a slice is computed once and reused (``hashlib`` state copy, then the tag).

It prints requests by action with latency percentiles, errors (any unexpected
status, connection error or mismatch; must be 0), throughput, and the CPU used
by the client process, the server processes and the whole machine, so one can
tell whether the client limited the figures.

This file holds the settings and the run; beside it, ``load_content.py`` (the
part bodies and the objects to read back), ``load_client.py`` (one client's
requests, timed and checked), ``load_operations.py`` (the operations) and
``load_report.py`` (CPU accounting and the report).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The repository (tests.oracle, tests.servers), and the load bench's own
# modules (load_*.py), imported by name as server_bench.py imports its siblings.
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from load_client import OPERATIONS  # noqa: E402
from load_client import Budget  # noqa: E402
from load_client import ErrorLog  # noqa: E402
from load_content import TAG_LEN  # noqa: E402
from load_content import KiB  # noqa: E402
from load_content import MiB  # noqa: E402
from load_content import Payload  # noqa: E402
from load_content import Registry  # noqa: E402
from load_operations import LoadClient  # noqa: E402
from load_report import all_processes  # noqa: E402
from load_report import busiest_others  # noqa: E402
from load_report import machine_cpu  # noqa: E402
from load_report import process_cpu  # noqa: E402
from load_report import report  # noqa: E402
from load_report import scrape_metrics  # noqa: E402

DEFAULT_MIX = "small=40,large=10,get=25,range=15,abort=5,delete=5"


# -- settings -----------------------------------------------------------------


def parse_size(text: str) -> int:
    """``5242880``, ``5MiB``, ``5M``, ``256KiB``, ``256k`` -> bytes."""
    value = text.strip().lower().removesuffix("ib").removesuffix("b")
    for suffix, factor in (("k", KiB), ("m", MiB), ("g", 1 << 30)):
        if value.endswith(suffix):
            return int(float(value[:-1]) * factor)
    return int(value)


def parse_mix(text: str) -> dict[str, float]:
    """``small=40,large=10,...`` -> weights by operation (others 0)."""
    weights = dict.fromkeys(OPERATIONS, 0.0)
    for item in text.split(","):
        name, _, weight = item.partition("=")
        name = name.strip()
        if name not in weights:
            raise argparse.ArgumentTypeError(f"unknown operation {name!r} in --mix")
        weights[name] = float(weight)
    if weights["small"] + weights["large"] <= 0:
        raise argparse.ArgumentTypeError("--mix needs some small or large uploads")
    return weights


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Concurrent mixed load against mpuflask under gunicorn.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients")
    parser.add_argument(
        "--duration", type=float, default=60.0, help="seconds to start operations"
    )
    parser.add_argument(
        "--ops", type=int, default=0, help="stop after this many operations (0: no cap)"
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=16, help="threads per worker")
    parser.add_argument(
        "--min-part-size",
        type=parse_size,
        default=5 * MiB,
        help="MPUFLASK_MIN_PART_SIZE (leading parts of small uploads are this size)",
    )
    parser.add_argument(
        "--large-part-min", type=parse_size, default=5 * MiB, help="smallest large part"
    )
    parser.add_argument(
        "--large-part-max", type=parse_size, default=10 * MiB, help="largest large part"
    )
    parser.add_argument(
        "--large-parts", default="3-5", help="parts per large upload, as lo-hi"
    )
    parser.add_argument(
        "--small-last-max",
        type=parse_size,
        default=256 * KiB,
        help="largest last part of a small upload",
    )
    parser.add_argument(
        "--mix", type=parse_mix, default=DEFAULT_MIX, help="operation weights"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra server environment, e.g. MPUFLASK_DURABLE=false (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    parser.add_argument(
        "--tmp-dir", default=None, help="parent of the temporary data directory"
    )
    parser.add_argument(
        "--log", type=Path, default=None, help="keep the server log at this path"
    )
    args = parser.parse_args(argv)
    low, _, high = args.large_parts.partition("-")
    args.large_parts_range = (int(low), int(high or low))
    if args.large_part_min < args.min_part_size:
        args.large_part_min = args.min_part_size
    if args.large_part_max < args.large_part_min:
        parser.error("--large-part-max is below the large part minimum")
    if args.min_part_size <= TAG_LEN or args.small_last_max <= TAG_LEN:
        parser.error(f"part sizes must exceed the {TAG_LEN}-byte tag")
    if args.small_last_max > args.min_part_size:
        parser.error("--small-last-max must not exceed --min-part-size")
    if args.clients < 1 or args.duration <= 0:
        parser.error("--clients and --duration must be positive")
    return args


def booted_workers(running: Any, workers: int) -> list[int]:
    """The worker pids, once all ``workers`` have forked (at most 30 s)."""
    deadline = time.monotonic() + 30
    pids: list[int] = running.worker_pids()
    while len(pids) < workers and time.monotonic() < deadline:
        time.sleep(0.1)
        pids = running.worker_pids()
    return pids


@contextmanager
def server(args: argparse.Namespace, tmp: Path) -> Iterator[Any]:
    """gunicorn from ``gunicorn.conf.py``, via the test suite's helper."""
    from tests.servers import gunicorn_server

    env = {"MPUFLASK_MIN_PART_SIZE": str(args.min_part_size)}
    for item in args.env:
        name, _, value = item.partition("=")
        env[name] = value
    with gunicorn_server(
        tmp, workers=args.workers, threads=args.threads, env=env
    ) as running:
        yield running


def log_findings(log: Path, request_ids: set[str]) -> tuple[list[str], list[str]]:
    """Server log lines for the failed requests, and its ERROR/worker lines."""
    related, alarming = [], []
    alarms = ('"level": "ERROR"', '"level": "CRITICAL"', "WORKER TIMEOUT", "Traceback")
    for line in log.read_text(errors="replace").splitlines():
        if any(f'"request_id": "{rid}"' in line for rid in request_ids):
            related.append(line)
        if any(alarm in line for alarm in alarms):
            alarming.append(line)
    return related, alarming


# -- the run ------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(
        f"load bench: {args.clients} clients, {args.duration:g} s"
        + (f" or {args.ops} operations" if args.ops else "")
        + f"; gunicorn {args.workers} workers x {args.threads} threads;"
        f" min part {args.min_part_size / MiB:g} MiB; large parts"
        f" {args.large_part_min / MiB:g}-{args.large_part_max / MiB:g} MiB"
        f" x {args.large_parts}; mix {args.mix}; server env {args.env or '-'};"
        f" {os.cpu_count()} CPUs",
        flush=True,
    )
    payload = Payload(args)
    registry = Registry()
    errors = ErrorLog()
    with tempfile.TemporaryDirectory(prefix="mpuflask-load-", dir=args.tmp_dir) as td:
        tmp = Path(td)
        with server(args, tmp) as running:
            port = int(running.url.rsplit(":", 1)[1].strip("/"))
            pids = [running.process.pid, *booted_workers(running, args.workers)]
            metrics0 = scrape_metrics(port)
            clients = [
                LoadClient(n, port, args, payload, registry, errors)
                for n in range(args.clients)
            ]
            usage0 = resource.getrusage(resource.RUSAGE_SELF)
            server0, machine0 = process_cpu(pids), machine_cpu()
            processes0 = all_processes()
            began = time.monotonic()
            budget = Budget(args.duration, args.ops)
            threads = [
                threading.Thread(target=c.run, args=(budget,), name=f"client-{n}")
                for n, c in enumerate(clients)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(max(1.0, budget.deadline + 600 - time.monotonic()))
            wall = time.monotonic() - began
            usage1 = resource.getrusage(resource.RUSAGE_SELF)
            server1, machine1 = process_cpu(pids), machine_cpu()
            others = busiest_others(processes0, all_processes(), {os.getpid(), *pids})
            hung = [t.name for t in threads if t.is_alive()]
            for name in hung:
                errors.add("-", "-", f"{name} still running 600 s after the deadline")
            for client in clients:
                client.conn.close()
            final_workers = running.worker_pids()
            metrics1 = scrape_metrics(port)
            metrics = {k: v - metrics0.get(k, 0.0) for k, v in metrics1.items()}
            stored_bytes = sum(
                f.stat().st_size for f in running.data_dir.rglob("*") if f.is_file()
            )
        log_path = running.log
        failed_ids = {rid for _, rid, _ in errors.entries if rid != "-"}
        related, alarming = log_findings(log_path, failed_ids)
        kept = args.log
        if kept is None and (errors.entries or alarming):
            kept = Path(tempfile.gettempdir()) / f"mpuflask-load-{os.getpid()}.log"
        if kept is not None:
            shutil.copyfile(log_path, kept)

    report(
        args,
        clients,
        errors,
        wall=wall,
        client_cpu=(usage1.ru_utime + usage1.ru_stime)
        - (usage0.ru_utime + usage0.ru_stime),
        server_cpu=server1 - server0,
        machine=(
            machine1[0] - machine0[0],
            machine1[1] - machine0[1],
            machine1[2] - machine0[2],
        ),
        metrics=metrics,
        others=others,
        objects=len(registry),
        stored_bytes=stored_bytes,
        restarts=sorted(set(final_workers) ^ set(pids[1:])),
    )
    if related:
        print("\nserver log lines of the failed requests:")
        for line in related[:40]:
            print("  " + line[:1000])
    if alarming:
        print(f"\nserver log: {len(alarming)} ERROR/worker lines, the first:")
        for line in alarming[:20]:
            print("  " + line[:2000])
    if kept is not None:
        print(f"\nserver log kept at {kept}")
    return 1 if errors.entries or alarming else 0


if __name__ == "__main__":
    sys.exit(main())
