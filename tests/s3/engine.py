"""The real S3 engine the s3 store is tested against, reached with boto3.

Tests never mock the engine: they need one answering at
``MPUFLASK_TEST_S3_ENDPOINT`` (default ``http://127.0.0.1:7480``, where
``shared/ceph-rgw.sh`` starts Ceph's radosgw; ``.ci/run`` does so). Without one,
every s3 test is skipped with the reason :func:`probe` gives.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any

ENDPOINT = os.environ.get("MPUFLASK_TEST_S3_ENDPOINT", "http://127.0.0.1:7480")
ACCESS_KEY_ID = os.environ.get("MPUFLASK_TEST_S3_ACCESS_KEY_ID", "AKTEST")
SECRET_ACCESS_KEY = os.environ.get("MPUFLASK_TEST_S3_SECRET_ACCESS_KEY", "SKTEST")
REGION = os.environ.get("MPUFLASK_TEST_S3_REGION", "us-east-1")


@dataclass(frozen=True)
class Engine:
    """Where the test engine answers, and a client for the tests' own checks."""

    endpoint: str
    client: Any

    def settings(self, bucket: str) -> dict[str, Any]:
        """The app settings that put the s3 store on ``bucket``."""
        return {
            "MPUFLASK_STORE": "s3",
            "MPUFLASK_S3_BUCKET": bucket,
            "MPUFLASK_S3_ENDPOINT": self.endpoint,
            "MPUFLASK_S3_REGION": REGION,
            "MPUFLASK_S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "MPUFLASK_S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        }

    def environment(self, bucket: str) -> dict[str, str]:
        """The same settings as environment variables (for gunicorn)."""
        return {name: str(value) for name, value in self.settings(bucket).items()}

    def new_bucket(self) -> str:
        name = f"mpuflask-test-{uuid.uuid4().hex[:24]}"
        self.client.create_bucket(Bucket=name)
        return name

    def drop_bucket(self, bucket: str) -> None:
        """Abort every upload, delete every object, then the bucket."""
        for upload in self.uploads(bucket):
            self.client.abort_multipart_upload(
                Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        for item in self.objects(bucket):
            self.client.delete_object(Bucket=bucket, Key=item["Key"])
        self.client.delete_bucket(Bucket=bucket)

    def objects(self, bucket: str) -> list[Any]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [item for page in pages for item in page.get("Contents", [])]

    def uploads(self, bucket: str) -> list[Any]:
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=bucket
        )
        return [item for page in pages for item in page.get("Uploads", [])]

    def parts(self, bucket: str, key: str, upload_id: str) -> list[Any]:
        pages = self.client.get_paginator("list_parts").paginate(
            Bucket=bucket, Key=key, UploadId=upload_id
        )
        return [item for page in pages for item in page.get("Parts", [])]

    def leftovers(self, bucket: str) -> list[str]:
        """Every object and open upload, but the store's bookkeeping: what an
        upload that is finished, aborted or swept must not leave behind."""
        found = [
            item["Key"]
            for item in self.objects(bucket)
            if not is_bookkeeping(item["Key"])
        ]
        found += [f"upload {item['Key']}" for item in self.uploads(bucket)]
        return sorted(found)

    def state(self, bucket: str) -> dict[str, bytes]:
        """Everything the bucket holds: objects (bytes), uploads and parts.

        S3 cannot read back the bytes of a part, so a part is shown as
        :func:`part_entry` (its MD5 and size). The store's bookkeeping (sweep
        lease, staging decision, filler part) is left out: it is no upload's.
        """
        found: dict[str, bytes] = {}
        for item in self.objects(bucket):
            if is_bookkeeping(item["Key"]):
                continue
            body = self.client.get_object(Bucket=bucket, Key=item["Key"])["Body"]
            found[f"objects/{item['Key']}"] = body.read()
        for upload in self.uploads(bucket):
            name = f"uploads/{upload['Key']}/{upload['UploadId']}"
            found[name] = b""
            for part in self.parts(bucket, upload["Key"], upload["UploadId"]):
                etag = part["ETag"].strip('"')
                found[f"{name}/{part['PartNumber']:05d}"] = part_entry(
                    etag, part["Size"]
                )
        return found


def is_bookkeeping(key: str) -> bool:
    """The store's own objects, one per bucket: the staging decision, the
    sweep lease and the filler part."""
    return key in (".mpuflask/engine.json", ".mpuflask/sweep.json") or (
        key.startswith(".mpuflask/filler-")
    )


def part_entry(md5_hex: str, size: int) -> bytes:
    """How :meth:`Engine.state` shows a part whose bytes S3 will not give back."""
    return f"part md5={md5_hex} size={size}".encode()


def connect(endpoint: str = ENDPOINT) -> Engine:
    """A client for the engine (quick to give up: this is a probe too)."""
    import boto3
    from botocore.config import Config

    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(
            connect_timeout=2,
            read_timeout=30,
            retries={"mode": "standard", "max_attempts": 2},
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )
    return Engine(endpoint, client)


def probe(min_part: int) -> Engine | str:
    """The engine, or why the s3 tests cannot run against it."""
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError

    try:
        engine = connect()
        engine.client.list_buckets()
    except (BotoCoreError, ClientError) as error:  # no answer, or refused us
        return (
            f"no S3 engine answers at {ENDPOINT} ({type(error).__name__}: {error}); "
            "start one with shared/ceph-rgw.sh as .ci/run does, or set "
            "MPUFLASK_TEST_S3_ENDPOINT"
        )
    # The tests use parts of `min_part` bytes; the engine must take them.
    bucket = engine.new_bucket()
    try:
        client = engine.client
        upload = client.create_multipart_upload(Bucket=bucket, Key="probe")
        parts = []
        for number, size in ((1, min_part), (2, 1)):
            answer = client.upload_part(
                Bucket=bucket,
                Key="probe",
                UploadId=upload["UploadId"],
                PartNumber=number,
                Body=b"p" * size,
            )
            parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        try:
            client.complete_multipart_upload(
                Bucket=bucket,
                Key="probe",
                UploadId=upload["UploadId"],
                MultipartUpload={"Parts": parts},
            )
        except client.exceptions.ClientError as error:
            return (
                f"the S3 engine at {ENDPOINT} refuses {min_part}-byte parts "
                f"({error.response['Error'].get('Code')}); the tests need small "
                "parts: for Ceph, `ceph config set client.rgw "
                f"rgw_multipart_min_part_size {min_part}` (.ci/run does)"
            )
    finally:
        engine.drop_bucket(bucket)
    return engine
