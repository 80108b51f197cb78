"""Where the time of mpuflask's mpu-complete goes, in-process, without HTTP.

Run: ``python bench/profile_complete.py`` (``--help``). It builds the store
(``FilesystemBucket``) in a temporary directory, uploads ``--size-mib`` in
``--part-mib`` parts through the store's API, then times ``complete()``, with
every ``os.fsync`` it makes timed on the side (the module is wrapped in this
process only; mpuflask's code is not changed). Both durabilities, ``--repeat``
times each, fresh keys, with ``os.sync()`` before each complete so earlier
writes are not flushed inside it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.dont_write_bytecode = True  # nothing written into the repo
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mpuflask.rules import PartRef  # noqa: E402
from mpuflask.storage import HttpMetadata  # noqa: E402
from mpuflask.storage import filesystem  # noqa: E402

MIB = 1 << 20


class FsyncClock:
    """Wraps ``os.fsync`` as the store sees it: counts calls, sums their time."""

    def __init__(self) -> None:
        self.each: list[float] = []
        self.real: Callable[[Any], None] = os.fsync

    def __call__(self, fd: Any) -> None:
        start = time.perf_counter()
        self.real(fd)
        self.each.append(time.perf_counter() - start)


def profile(
    root: Path, durable: bool, size: int, part_size: int, repeat: int
) -> list[tuple[float, list[float]]]:
    """(complete seconds, each fsync's seconds in call order) per round."""
    bucket = filesystem.FilesystemBucket(
        root,
        min_part_size=5 * MIB,
        upload_ttl=timedelta(days=1),
        durable=durable,
    )
    data = os.urandom(part_size)
    rounds = []
    for rnd in range(repeat):
        key = f"profile/{durable}-{rnd}"
        info = bucket.create_multipart_upload(key, HttpMetadata({}))
        upload = bucket.resume_multipart_upload(key, info.upload_id)
        refs = []
        for index in range(-(-size // part_size)):
            body = data[: min(part_size, size - index * part_size)]
            chunks = [body[i : i + MIB] for i in range(0, len(body), MIB)]
            part = upload.upload_part(index + 1, chunks)
            refs.append(PartRef(part.part_number, part.etag))
        os.sync()
        clock = FsyncClock()
        real_fsync = os.fsync
        os.fsync = clock  # this process only: every fsync the store makes, timed
        try:
            start = time.perf_counter()
            upload.complete(refs)
            elapsed = time.perf_counter() - start
        finally:
            os.fsync = real_fsync
        rounds.append((elapsed, clock.each))
        bucket.delete(key)
    return rounds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--part-mib", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="mpuflask-complete-"))
    try:
        print(
            f"complete() of {args.size_mib} MiB in {args.part_mib} MiB parts, "
            f"in-process, {args.repeat} rounds (median [min-max])"
        )
        for durable in (True, False):
            rounds = profile(
                work / f"data-{durable}",
                durable,
                args.size_mib * MIB,
                args.part_mib * MIB,
                args.repeat,
            )
            total = [r[0] * 1000 for r in rounds]
            fsync = [sum(r[1]) * 1000 for r in rounds]
            rest = [t - f for t, f in zip(total, fsync, strict=True)]
            print(
                f"  durable={str(durable).lower():<5}  complete {_spread(total)} ms"
                f"  = {len(rounds[0][1])} fsyncs {_spread(fsync)} ms"
                f"  + the rest {_spread(rest)} ms"
            )
            for call in range(len(rounds[0][1])):
                each = [r[1][call] * 1000 for r in rounds]
                print(f"      fsync #{call + 1}: {_spread(each)} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _spread(values: Sequence[float]) -> str:
    return f"{statistics.median(values):6.1f} [{min(values):.1f}-{max(values):.1f}]"


if __name__ == "__main__":
    sys.exit(main())
