"""Listing bench: one page of 1,000 keys, with 10,000 and 200,000 objects stored.

Run from the repository root::

    .venv/bin/python bench/listing.py                      # 10,000 and 200,000
    .venv/bin/python bench/listing.py --sizes 10000 1000000 --runs 41

For each size it makes a filesystem store in a temporary directory and fills
its listing index, then times ``GET /?action=list`` through the app (Flask's
test client: routing, auth hooks, the index query, the JSON answer; no
socket) for four pages of 1,000 entries:

* ``first``: the first page, no prefix;
* ``middle``: a page that starts halfway, from a cursor;
* ``prefix``: the first page under ``flat/`` (half of the keys);
* ``delimiter``: the first page under ``tree/`` with ``/``: 1,000 folded
  prefixes, each a jump past its folder (the worst case: a query per entry).

Half of the keys are ``flat/<n>``, half ``tree/d<n % 2000>/<n>``. The fill:
``--real`` objects (default 1,000) go through the store's API (create, one
part, complete; durability off), the rest are written straight into the
index, in one transaction, with the rows a rebuild would write
(``fsindexrows.put``): the listing reads only the index, and 200,000 real
completes would take this machine most of an hour. It prints the median and
the slowest of ``--runs`` timings per page; the goal is under 100 ms, and the
same (within 2x) at every size.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask.testing import FlaskClient  # noqa: E402

from mpuflask import create_app  # noqa: E402
from mpuflask.rules import PartRef  # noqa: E402
from mpuflask.storage import HttpMetadata  # noqa: E402
from mpuflask.storage import ObjectInfo  # noqa: E402
from mpuflask.storage import fsindexrows  # noqa: E402
from mpuflask.storage.filesystem import FilesystemBucket  # noqa: E402

PAGE = 1000
FOLDERS = 2000


def key_of(number: int) -> str:
    if number % 2 == 0:
        return f"flat/{number:09d}"
    return f"tree/d{number % FOLDERS:04d}/{number:09d}"


def fill(bucket: FilesystemBucket, size: int, real: int) -> None:
    """``real`` objects through the store's API, the rest straight into the index."""
    metadata = HttpMetadata({"Content-Type": "application/octet-stream"})
    for number in range(real):
        key = key_of(number)
        upload = bucket.create_multipart_upload(key, metadata)
        handle = bucket.resume_multipart_upload(key, upload.upload_id)
        part = handle.upload_part(1, [key.encode()])
        handle.complete([PartRef(1, part.etag)])
    now = datetime.now(UTC)
    with bucket.index._write("bench") as conn:
        for number in range(real, size):
            info = ObjectInfo(
                key=key_of(number),
                size=1024,
                etag="0123456789abcdef0123456789abcdef-1",
                uploaded=now,
                http_metadata=metadata,
                version=f"bench{number}",
            )
            fsindexrows.put(conn, info)


def time_page(client: FlaskClient, query: str, runs: int, expect: int) -> list[float]:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(f"/?action=list{query}")
        elapsed = time.perf_counter() - started
        answer = response.get_json()
        entries = len(answer["objects"]) + len(answer["delimitedPrefixes"])
        assert response.status_code == 200 and entries == expect, (query, entries)
        timings.append(elapsed * 1000)
    return timings


def bench(size: int, runs: int, real: int, workdir: Path) -> dict[str, list[float]]:
    data_dir = workdir / f"data-{size}"
    app = create_app(
        {
            "MPUFLASK_DATA_DIR": str(data_dir),
            "MPUFLASK_DURABLE": False,
            "MPUFLASK_MIN_PART_SIZE": 1,
            "MPUFLASK_SWEEP_ON_START": False,
        }
    )
    bucket = app.extensions["mpuflask"].bucket
    started = time.monotonic()
    fill(bucket, size, min(real, size))
    print(
        f"{size:>9,} objects stored in {time.monotonic() - started:.1f} s; "
        f"index {(data_dir / 'index' / 'objects.sqlite').stat().st_size / 1e6:.1f} MB "
        f"(+ WAL)",
        flush=True,
    )
    client = app.test_client()
    cursor = None
    for _ in range(size // 2 // PAGE):  # walk to the middle, one page at a time
        answer = client.get(
            f"/?action=list&limit={PAGE}" + (f"&cursor={cursor}" if cursor else "")
        ).get_json()
        cursor = answer["cursor"]
    return {
        "first": time_page(client, "", runs, PAGE),
        "middle": time_page(client, f"&cursor={cursor}", runs, PAGE),
        "prefix": time_page(client, "&prefix=flat/", runs, PAGE),
        "delimiter": time_page(client, "&prefix=tree/&delimiter=/", runs, PAGE),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 200_000])
    parser.add_argument("--runs", type=int, default=21, help="timings per page")
    parser.add_argument(
        "--real", type=int, default=1000, help="objects through the store's API"
    )
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="mpuflask-listing-"))
    results = {}
    try:
        for size in args.sizes:
            if size < 4 * PAGE:
                parser.error(f"--sizes: {size} is too few for full pages")
            results[size] = bench(size, args.runs, args.real, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\none page of {PAGE:,} entries, ms: median / slowest of {args.runs}")
    print(
        f"{'objects':>10}  "
        + "  ".join(f"{name:>17}" for name in results[args.sizes[0]])
    )
    for size, pages in results.items():
        cells = [f"{statistics.median(t):7.1f} / {max(t):7.1f}" for t in pages.values()]
        print(f"{size:>10,}  " + "  ".join(cells))
    medians = {
        name: [statistics.median(results[size][name]) for size in results]
        for name in results[args.sizes[0]]
    }
    worst = max(max(m) for m in medians.values())
    spread = max(max(m) / min(m) for m in medians.values())
    print(
        f"\nslowest median {worst:.1f} ms (goal < 100); largest ratio between "
        f"sizes {spread:.2f}x (goal < 2x)"
    )
    return 0 if worst < 100 and spread < 2 else 1


if __name__ == "__main__":
    sys.exit(main())
