"""Throughput through an mpuflask gateway vs. the same S3 engine reached directly.

Run from the repository root, with an S3 engine answering (``.ci/run`` or
``shared/ceph-rgw.sh`` start Ceph's radosgw on 127.0.0.1:7480)::

    python bench/s3_gateway.py                       # 256 MiB, 16 MiB parts, 4 at once
    python bench/s3_gateway.py --size-mib 1024 --repeat 5

In one run it creates a scratch bucket, starts one gunicorn gateway
(``wsgi:app``, ``MPUFLASK_STORE=s3`` on that bucket, our ``gunicorn.conf.py``)
and then, ``--repeat`` times, alternating which goes first:

* uploads one object of ``--size-mib`` through the gateway (mpu-create, the
  parts ``--concurrency`` at a time, mpu-complete) and the same bytes directly
  with boto3 (CreateMultipartUpload, UploadPart, CompleteMultipartUpload);
* reads it back whole, through the gateway (one GET, 1 MiB reads) and directly
  (GetObject, 1 MiB reads), discarding the bytes after counting them;
* deletes it, so the engine holds one object per path at a time (radosgw's
  memory store fills otherwise: its garbage collector frees deleted bytes only
  after half a minute or more, so leave a minute between big runs).

It prints every round's figures, then the medians: upload MiB/s (create to
complete), complete's own time, GET MiB/s, and the gateway's share of the
direct figure; and the machine's load average before and after, since the
client, the gateway and the engine share its cores. The bucket is emptied and
deleted at the end; nothing is written into the repository.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import gunicorn_server  # noqa: E402

MIB = 1 << 20


@dataclass
class Figures:
    """Every round's measurements of one path (gateway or direct)."""

    upload: list[float] = field(default_factory=list)  # MiB/s
    complete: list[float] = field(default_factory=list)  # seconds
    get: list[float] = field(default_factory=list)  # MiB/s


def main() -> None:
    options = _arguments()
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=options.endpoint,
        region_name=options.region,
        aws_access_key_id=options.access_key,
        aws_secret_access_key=options.secret_key,
        config=Config(
            s3={"addressing_style": "path", "payload_signing_enabled": False},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            max_pool_connections=options.concurrency * 2,
        ),
    )
    bucket = f"mpuflask-bench-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    data = os.urandom(options.size_mib * MIB)
    part = options.part_mib * MIB
    parts = [memoryview(data)[i : i + part] for i in range(0, len(data), part)]
    env = {
        "MPUFLASK_STORE": "s3",
        "MPUFLASK_S3_BUCKET": bucket,
        "MPUFLASK_S3_ENDPOINT": options.endpoint,
        "MPUFLASK_S3_REGION": options.region,
        "MPUFLASK_S3_ACCESS_KEY_ID": options.access_key,
        "MPUFLASK_S3_SECRET_ACCESS_KEY": options.secret_key,
        "MPUFLASK_MIN_PART_SIZE": str(min(part, 5 * MIB)),
        "MPUFLASK_SWEEP_INTERVAL": "0",
        "MPUFLASK_S3_STAGE_UPLOADS": str(options.stage_uploads).lower(),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    gateway, direct = Figures(), Figures()
    load_before = os.getloadavg()
    try:
        with (
            tempfile.TemporaryDirectory() as scratch,
            gunicorn_server(
                Path(scratch),
                workers=options.workers,
                threads=options.threads,
                env=env,
            ) as server,
        ):
            rounds: list[Callable[[int], None]] = [
                lambda n: _through_gateway(server.url, parts, options, gateway, n),
                lambda n: _direct(client, bucket, parts, options, direct, n),
            ]
            for number in range(options.repeat):
                order = rounds if number % 2 == 0 else rounds[::-1]
                for run in order:
                    run(number)
    finally:
        _drop(client, bucket)
    _report(options, gateway, direct, (load_before, os.getloadavg()))


def _through_gateway(
    url: str, parts: list[memoryview], options: Any, figures: Figures, number: int
) -> None:
    key = f"gateway-{number}"
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        found: requests.Session = local.session
        return found

    started = time.perf_counter()
    upload_id = requests.post(f"{url}{key}?action=mpu-create", timeout=60).json()[
        "uploadId"
    ]

    def send(item: tuple[int, memoryview]) -> dict[str, Any]:
        n, body = item
        response = session().put(
            f"{url}{key}?action=mpu-uploadpart&uploadId={upload_id}&partNumber={n}",
            data=bytes(body),
            timeout=600,
        )
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    with concurrent.futures.ThreadPoolExecutor(options.concurrency) as pool:
        listed = list(pool.map(send, enumerate(parts, 1)))
    completing = time.perf_counter()
    done = requests.post(
        f"{url}{key}?action=mpu-complete&uploadId={upload_id}",
        json={"parts": listed},
        timeout=600,
    )
    done.raise_for_status()
    finished = time.perf_counter()
    figures.upload.append(options.size_mib / (finished - started))
    figures.complete.append(finished - completing)

    started = time.perf_counter()
    count = 0
    with requests.get(f"{url}{key}?action=get", stream=True, timeout=600) as got:
        got.raise_for_status()
        for chunk in got.iter_content(MIB):
            count += len(chunk)
    figures.get.append(options.size_mib / (time.perf_counter() - started))
    assert count == options.size_mib * MIB, count
    requests.delete(f"{url}{key}?action=delete", timeout=60).raise_for_status()


def _direct(
    client: Any,
    bucket: str,
    parts: list[memoryview],
    options: Any,
    figures: Figures,
    number: int,
) -> None:
    key = f"direct-{number}"
    started = time.perf_counter()
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]

    def send(item: tuple[int, memoryview]) -> dict[str, Any]:
        n, body = item
        answer = client.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=bytes(body)
        )
        return {"PartNumber": n, "ETag": answer["ETag"]}

    with concurrent.futures.ThreadPoolExecutor(options.concurrency) as pool:
        listed = list(pool.map(send, enumerate(parts, 1)))
    completing = time.perf_counter()
    client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": listed}
    )
    finished = time.perf_counter()
    figures.upload.append(options.size_mib / (finished - started))
    figures.complete.append(finished - completing)

    started = time.perf_counter()
    count = 0
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    while chunk := body.read(MIB):
        count += len(chunk)
    figures.get.append(options.size_mib / (time.perf_counter() - started))
    assert count == options.size_mib * MIB, count
    client.delete_object(Bucket=bucket, Key=key)


def _drop(client: Any, bucket: str) -> None:
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for upload in page.get("Uploads", []):
            client.abort_multipart_upload(
                Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])
    client.delete_bucket(Bucket=bucket)


def _report(
    options: Any, gateway: Figures, direct: Figures, loads: tuple[Any, Any]
) -> None:
    median = statistics.median
    print(
        f"{options.size_mib} MiB object, {options.part_mib} MiB parts, "
        f"{options.concurrency} at once, {options.repeat} round(s), "
        f"gateway: gunicorn {options.workers}x{options.threads} gthread, "
        f"staged uploads: {options.stage_uploads}, "
        f"engine: {options.endpoint}, "
        f"load average {loads[0][0]:.1f} before, {loads[1][0]:.1f} after"
    )
    for name, figures in (("gateway", gateway), ("direct boto3", direct)):
        rounds = zip(figures.upload, figures.complete, figures.get, strict=True)
        print(
            f"  {name} rounds (upload MiB/s, complete ms, GET MiB/s): "
            + ", ".join(f"{u:.0f}/{c * 1000:.0f}/{g:.0f}" for u, c, g in rounds)
        )
    print(f"{'path':<16}{'upload MiB/s':>14}{'complete ms':>14}{'GET MiB/s':>12}")
    for name, figures in (("gateway", gateway), ("direct boto3", direct)):
        print(
            f"{name:<16}{median(figures.upload):>14.0f}"
            f"{median(figures.complete) * 1000:>14.0f}{median(figures.get):>12.0f}"
        )
    print(
        f"{'gateway/direct':<16}"
        f"{median(gateway.upload) / median(direct.upload):>14.0%}"
        f"{median(gateway.complete) / median(direct.complete):>14.1f}x"
        f"{median(gateway.get) / median(direct.get):>12.0%}"
    )


def _arguments() -> Any:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    environ = os.environ.get
    parser.add_argument(
        "--endpoint",
        default=environ("MPUFLASK_TEST_S3_ENDPOINT", "http://127.0.0.1:7480"),
    )
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument(
        "--access-key", default=environ("MPUFLASK_TEST_S3_ACCESS_KEY_ID", "AKTEST")
    )
    parser.add_argument(
        "--secret-key", default=environ("MPUFLASK_TEST_S3_SECRET_ACCESS_KEY", "SKTEST")
    )
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--part-mib", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--stage-uploads",
        type=lambda text: {"auto": "auto", "true": True, "false": False}[text],
        default="auto",
        help="MPUFLASK_S3_STAGE_UPLOADS: auto (probe), true or false; false "
        "completes in place even on Ceph (fine here: every part is listed)",
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=8, help="threads per worker")
    return parser.parse_args()


if __name__ == "__main__":
    main()
