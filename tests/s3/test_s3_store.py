"""What is particular to the s3 store, against the real engine.

The behavioural suite (tests/test_*.py) already runs on this store; here:
records shared by gateways, sweep, the reader's behaviour on overwrite, both
ways of completing, metadata exactness, refusals and configuration.
"""

from __future__ import annotations

import io
import json
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from mpuflask import create_app
from mpuflask.storage import HttpMetadata
from mpuflask.storage.s3 import S3Bucket
from mpuflask.storage.s3errors import ObjectChanged
from mpuflask.storage.s3io import BodyLengthMismatch
from mpuflask.storage.s3io import PartStream

from ..conftest import MIN_PART
from ..conftest import Flow
from ..oracle import md5
from ..oracle import multipart_etag
from .conftest import Gateway
from .conftest import s3_bucket_of


def store(app: Flask) -> S3Bucket:
    return s3_bucket_of(app)


def test_uploads_are_shared_by_gateways(gateway: Gateway) -> None:
    one, two = gateway(), gateway()
    owned = store(one).create_multipart_upload(
        "owned", HttpMetadata({"Content-Type": "text/plain"}), owner="alice"
    )
    upload = store(two).resume_multipart_upload("owned", owned.upload_id)
    assert upload.info().owner == "alice"
    assert upload.info().expires == owned.expires
    assert upload.info().http_metadata == owned.http_metadata
    first, second = Flow(one.test_client()), Flow(two.test_client())
    upload_id = first.create("shared")
    a = first.part(upload_id, 1, b"a" * MIN_PART, key="shared")
    b = second.part(upload_id, 2, b"tail", key="shared")
    listed = first.client.get(f"/shared?action=mpu-listparts&uploadId={upload_id}").json
    assert [p["partNumber"] for p in listed["parts"]] == [1, 2]
    etag = second.complete(upload_id, [a, b], key="shared")
    assert first.get("shared").data == b"a" * MIN_PART + b"tail"
    assert etag == f'"{multipart_etag([b"a" * MIN_PART, b"tail"])}"'


def test_record_lives_beside_the_upload(
    gateway: Gateway, s3_engine: Any, s3_bucket: str
) -> None:
    flow = Flow(gateway().test_client())
    upload_id = flow.create("k")
    record = json.loads(
        s3_engine.client.get_object(
            Bucket=s3_bucket, Key=f".mpuflask/uploads/{upload_id}.json"
        )["Body"].read()
    )
    assert record["key"] == "k"
    assert record["upload_id"] == upload_id
    assert datetime.fromisoformat(record["expires"]) > datetime.now(UTC)
    flow.abort(upload_id, key="k")
    assert s3_engine.leftovers(s3_bucket) == []


@pytest.mark.parametrize("key", [".mpuflask/uploads/x.json", "nul\x00byte"])
def test_keys_this_store_cannot_hold_are_invalid(gateway: Gateway, key: str) -> None:
    client = gateway().test_client()
    path = "/" + key.encode().decode("latin-1")
    response = client.post("/?action=mpu-create", environ_overrides={"PATH_INFO": path})
    assert (response.status_code, response.text) == (
        400,
        "createMultipartUpload: The specified object name is not valid. (10020)",
    )
    response = client.get("/?action=get", environ_overrides={"PATH_INFO": path})
    assert response.text == "get: The specified object name is not valid. (10020)"


def _split(data: bytes) -> list[bytes]:
    return [data[start : start + MIN_PART] for start in range(0, len(data), MIN_PART)]


def test_reader_fails_cleanly_when_the_key_changes(gateway: Gateway) -> None:
    """S3 cannot pin an old version: a reader gets its version or an error."""
    app = gateway()
    bucket = store(app)
    bucket.store.read_window = 1024
    flow = Flow(app.test_client())
    data = bytes(range(256)) * 40
    flow.upload(_split(data), key="obj")
    body = bucket.get("obj")
    assert body is not None
    assert body.read(10) == data[:10]
    body.seek(2000)
    assert body.read(100) == data[2000:2100]
    flow.upload([b"new version"], key="obj")
    with pytest.raises(ObjectChanged):
        body.read()
    body.close()
    assert flow.get("obj").data == b"new version"


def test_reads_go_by_growing_windows(gateway: Gateway) -> None:
    app = gateway()
    store(app).store.read_window = 1000
    flow = Flow(app.test_client())
    data = bytes(range(251)) * 100
    flow.upload(_split(data), key="big")
    got = flow.get("big")
    assert got.data == data
    body = store(app).get("big")
    assert body is not None
    assert body.read() == data
    body.seek(-5, io.SEEK_END)
    assert body.read() == data[-5:]
    body.close()


@pytest.mark.parametrize("staged", [True, False])
def test_both_ways_of_completing(gateway: Gateway, s3_engine: Any, staged) -> None:
    app = gateway(MPUFLASK_S3_STAGE_UPLOADS=staged)
    flow = Flow(app.test_client())
    parts = [b"x" * MIN_PART, b"y" * MIN_PART, b"z"]
    etag = flow.upload(parts, key="k", **{"Content-Type": "text/plain"})
    assert etag == f'"{multipart_etag(parts)}"'
    got = flow.get("k")
    assert (got.data, got.headers["etag"]) == (b"".join(parts), etag)
    # Other S3 clients see the native metadata too.
    head = s3_engine.client.head_object(Bucket=store(app).bucket, Key="k")
    assert head["ContentType"] == "text/plain"
    # Nothing is left but the object.
    assert s3_engine.leftovers(store(app).bucket) == ["k"]


def test_engine_that_cannot_drop_parts_is_probed(gateway: Gateway) -> None:
    """Ceph refuses a complete that leaves parts out: the store stages there."""
    bucket = store(gateway())
    assert bucket.stages_uploads() is True


def test_staged_complete_leaving_parts_out(gateway: Gateway, s3_engine: Any) -> None:
    app = gateway(MPUFLASK_S3_STAGE_UPLOADS=True)
    flow = Flow(app.test_client())
    upload_id = flow.create("k")
    big = flow.part(upload_id, 1, b"1" * MIN_PART, key="k")
    flow.part(upload_id, 2, b"2" * MIN_PART, key="k")
    small = flow.part(upload_id, 3, b"3", key="k")
    flow.part(upload_id, 4, b"4", key="k")
    etag = flow.complete(upload_id, [big, small], key="k")
    assert etag == f'"{multipart_etag([b"1" * MIN_PART, b"3"])}"'
    got = flow.get("k")
    assert (got.data, got.headers["etag"]) == (b"1" * MIN_PART + b"3", etag)
    assert s3_engine.leftovers(store(app).bucket) == ["k"]


def test_staged_part_replaced_by_a_smaller_one(gateway: Gateway) -> None:
    app = gateway(MPUFLASK_S3_STAGE_UPLOADS=True)
    flow = Flow(app.test_client())
    upload_id = flow.create()
    flow.part(upload_id, 1, b"a" * MIN_PART)
    small = flow.part(upload_id, 1, b"small")
    listed = flow.client.get(f"/file.bin?action=mpu-listparts&uploadId={upload_id}")
    assert listed.json["parts"] == [{"partNumber": 1, "etag": md5(b"small"), "size": 5}]
    flow.complete(upload_id, [small])
    assert flow.get().data == b"small"


def test_in_place_complete_on_an_engine_that_needs_every_part(
    gateway: Gateway,
) -> None:
    """Misconfigured (staging off on Ceph): a complete leaving parts out is
    refused by the engine, and nothing is published."""
    flow = Flow(gateway(MPUFLASK_S3_STAGE_UPLOADS=False).test_client())
    upload_id = flow.create()
    first = flow.part(upload_id, 1, b"a" * MIN_PART)
    flow.part(upload_id, 2, b"b")
    response = flow.complete_raw(upload_id, [first])
    assert response.text == (
        "completeMultipartUpload: One or more of the specified parts could not be found. (10025)"
    )
    assert flow.get().status_code == 404


def test_exact_http_metadata(gateway: Gateway) -> None:
    flow = Flow(gateway().test_client())
    headers = {
        "Expires": "0",  # invalid as a date; S3 would rewrite it
        "Content-Disposition": 'attachment; filename="caf\xc3\xa9.txt"',
        "Cache-Control": "no-cache,  no-store",
    }
    flow.upload([b"x"], key="meta", **headers)
    got = flow.get("meta")
    for name, value in headers.items():
        assert got.headers[name] == value
    assert got.headers["Content-Type"] == "application/octet-stream"


def test_chunked_part_is_spooled_and_checked(gateway: Gateway, spool_dir: Path) -> None:
    flow = Flow(gateway().test_client())
    upload_id = flow.create()
    data = b"c" * (3 * MIN_PART)
    response = flow.client.put(
        f"/file.bin?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1",
        input_stream=io.BytesIO(data),
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.json == {"partNumber": 1, "etag": md5(data)}
    assert list(spool_dir.iterdir()) == []
    flow.complete(upload_id, [response.json])
    assert flow.get().data == data


def test_part_stream_sends_exactly_its_length() -> None:
    short = PartStream([b"abc"], 5, "uploadPart")
    with pytest.raises(BodyLengthMismatch):
        short.read(5)
    assert isinstance(short.failure, BodyLengthMismatch)
    long = PartStream([b"abc", b"def"], 4, "uploadPart")
    with pytest.raises(BodyLengthMismatch):
        long.read(4)
    exact = PartStream([b"ab", b"cd"], 4, "uploadPart")
    assert exact.read(3) + exact.read(3) + exact.read(3) == b"abcd"
    assert exact.md5.hexdigest() == md5(b"abcd")


def test_sweep_removes_expired_and_orphaned(
    gateway: Gateway, s3_engine: Any, s3_bucket: str
) -> None:
    app = gateway(MPUFLASK_UPLOAD_TTL=3600, MPUFLASK_S3_STAGE_UPLOADS=True)
    bucket = store(app)
    flow = Flow(app.test_client())
    old = flow.create("old")
    flow.part(old, 1, b"o" * MIN_PART, key="old")
    flow.part(old, 2, b"small", key="old")
    kept = flow.create("kept")
    # A crash between the two writes of create: an upload without a record.
    orphan = s3_engine.client.create_multipart_upload(Bucket=s3_bucket, Key="orphan")
    # A crash after complete: a record without its upload.
    s3_engine.client.put_object(
        Bucket=s3_bucket, Key=".mpuflask/uploads/gone.json", Body=b"{}"
    )
    # A crash during the engine probe: its object.
    s3_engine.client.put_object(
        Bucket=s3_bucket, Key=".mpuflask/probe/leftover", Body=b"probe"
    )
    assert bucket.sweep() == 0  # nothing is old enough to be a leftover yet
    bucket.clock = lambda: datetime.now(UTC) + timedelta(seconds=3601)
    fresh = flow.create("fresh")
    bucket.store.orphan_grace = timedelta(0)
    assert bucket.sweep() == 5  # old, kept (expired), orphan, record, probe
    # Only the fresh upload is left: its engine upload and its record.
    [upload] = s3_engine.uploads(s3_bucket)
    assert upload["UploadId"] == fresh
    assert s3_engine.leftovers(s3_bucket) == [
        f".mpuflask/uploads/{fresh}.json",
        f"upload {upload['Key']}",
    ]
    for upload_id, key in (
        (old, "old"),
        (kept, "kept"),
        (orphan["UploadId"], "orphan"),
    ):
        late = flow.put_part(upload_id, 3, b"late", key=key)
        assert late.text == (
            "uploadPart: The specified multipart upload does not exist. (10024)"
        )


def test_engine_unreachable_is_503(tmp_path: Path) -> None:
    app = create_app(
        {
            "TESTING": True,
            "MPUFLASK_STORE": "s3",
            "MPUFLASK_S3_BUCKET": "nowhere",
            "MPUFLASK_S3_ENDPOINT": "http://127.0.0.1:9",
            "MPUFLASK_S3_REGION": "us-east-1",
            "MPUFLASK_S3_ACCESS_KEY_ID": "x",
            "MPUFLASK_S3_SECRET_ACCESS_KEY": "y",
            "MPUFLASK_S3_STAGE_UPLOADS": False,
            "MPUFLASK_S3_MAX_ATTEMPTS": 1,
            "MPUFLASK_SWEEP_ON_START": False,
        }
    )
    response = app.test_client().post("/k?action=mpu-create")
    assert (response.status_code, response.text) == (
        503,
        "createMultipartUpload: We encountered an internal error. Please try again. (10001)",
    )
    assert response.headers["Retry-After"] == "1"
    health = app.test_client().get("/?action=health")
    assert health.status_code == 503


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "MPUFLASK_STORE=s3 needs MPUFLASK_S3_BUCKET"),
        (
            {"MPUFLASK_S3_BUCKET": "b", "MPUFLASK_S3_SECRET_ACCESS_KEY": 123},
            "MPUFLASK_S3_SECRET_ACCESS_KEY must be text",
        ),
        (
            {"MPUFLASK_S3_BUCKET": "b", "MPUFLASK_S3_ADDRESSING_STYLE": "dns"},
            "MPUFLASK_S3_ADDRESSING_STYLE must be",
        ),
        (
            {"MPUFLASK_S3_BUCKET": "b", "MPUFLASK_S3_STATE_PREFIX": "state"},
            "MPUFLASK_S3_STATE_PREFIX must end in /",
        ),
        (
            {"MPUFLASK_S3_BUCKET": "b", "MPUFLASK_S3_STAGE_UPLOADS": "maybe"},
            "MPUFLASK_S3_STAGE_UPLOADS must be",
        ),
    ],
)
def test_bad_s3_settings_fail_at_start(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_app({"MPUFLASK_STORE": "s3", **settings})


def test_engine_refusing_the_same_parts_twice_is_answered_as_it_said(
    gateway: Gateway, s3_engine: Any, s3_bucket: str
) -> None:
    """A gateway configured below the engine's minimum part size (1 KiB
    here): the engine refuses the close (EntityTooSmall), and says so again
    with the same parts: that is its answer, not a race to retry."""
    flow = Flow(
        gateway(
            MPUFLASK_S3_STAGE_UPLOADS=True, MPUFLASK_MIN_PART_SIZE=512
        ).test_client()
    )
    upload_id = flow.create("k")
    parts = [
        flow.part(upload_id, 1, b"a" * 600, "k"),
        flow.part(upload_id, 2, b"b", "k"),
    ]
    refused = flow.complete_raw(upload_id, parts, "k")
    assert (refused.status_code, refused.text) == (
        400,
        "completeMultipartUpload: Your proposed upload is smaller than the minimum allowed object size. (10011)",
    )
    assert flow.get("k").status_code == 404
    # The upload is still open and whole.
    listed = flow.client.get(f"/k?action=mpu-listparts&uploadId={upload_id}").json
    assert [p["size"] for p in listed["parts"]] == [600, 1]
