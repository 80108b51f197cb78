"""Peak memory of ``mpuflask upload`` with big parts: bounded by threads, not parts.

Starts gunicorn (as the tests do), makes a file (default 1 GiB), runs the CLI
with 100 MiB parts and 8 threads as a child process, and prints the child's
peak RSS (``wait4``'s ``ru_maxrss``) beside a bare interpreter's that imports
the client, and beside what holding each in-flight part in memory would cost
(the seed script's way: ``concurrency x part size``).

Run from the repository root: ``python bench/client_memory.py`` (options:
``--size-mib``, ``--part-mib``, ``--concurrency``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import gunicorn_server  # noqa: E402

MIB = 1024 * 1024


def peak_rss_mib(command: list[str]) -> tuple[float, int, float]:
    """Run ``command``; its peak RSS in MiB, exit status and seconds taken."""
    started = time.monotonic()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024, child.returncode, time.monotonic() - started


def make_file(path: Path, mib: int) -> None:
    block = bytearray(os.urandom(MIB))
    with path.open("wb") as out:
        for index in range(mib):
            block[:8] = index.to_bytes(8, "big")
            out.write(block)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--part-mib", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="client-memory-") as temp:
        tmp = Path(temp)
        source = tmp / "big.bin"
        make_file(source, args.size_mib)
        env = {"MPUFLASK_DURABLE": "false"}
        with gunicorn_server(tmp, workers=4, env=env) as server:
            upload = [
                sys.executable,
                "-c",
                "from mpuflask.cli import main; main()",
                "upload",
                str(source),
                f"{server.url}bench/big.bin",
                "--part-size",
                f"{args.part_mib}MiB",
                "-j",
                str(args.concurrency),
                "-q",
                "--no-resume",
            ]
            rss, status, seconds = peak_rss_mib(upload)
        if status != 0:
            raise SystemExit(f"the upload failed (exit {status})")
        bare, _, _ = peak_rss_mib([sys.executable, "-c", "import mpuflask.client.api"])
    rate = args.size_mib / seconds
    print(
        f"upload {args.size_mib} MiB, {args.part_mib} MiB parts, "
        f"{args.concurrency} threads: {seconds:.1f} s ({rate:.0f} MiB/s)"
    )
    print(f"peak RSS of the CLI:              {rss:7.1f} MiB")
    print(f"peak RSS of python + the client:  {bare:7.1f} MiB (imports only)")
    held = args.concurrency * args.part_mib
    print(
        f"parts held in memory would need:  {held:7d} MiB "
        f"({args.concurrency} x {args.part_mib})"
    )


if __name__ == "__main__":
    main()
