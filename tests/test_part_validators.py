"""Part validators: checksums, content types, refusals mid-stream, failing hooks.

Every refusal leaves the store as it was, and the upload usable.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from typing import Any

import pytest

from mpuflask.errors import Forbidden
from mpuflask.hooks import PartInfo

from .conftest import Flow
from .oracle import md5


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def test_content_md5_mismatch_is_bad_digest(flow: Flow, stored_state) -> None:
    upload_id = flow.create()
    before = stored_state()
    url = f"/file.bin?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1"
    wrong = b64(hashlib.md5(b"other").digest())
    response = flow.client.put(url, data=b"payload", headers={"Content-MD5": wrong})
    assert (response.status_code, response.text) == (
        400,
        "uploadPart: The Content-MD5 you specified did not match what we received. (BadDigest)",
    )
    assert stored_state() == before
    listed = flow.client.get(f"/file.bin?action=mpu-listparts&uploadId={upload_id}")
    assert listed.json["parts"] == []
    right = b64(hashlib.md5(b"payload").digest())
    response = flow.client.put(url, data=b"payload", headers={"Content-MD5": right})
    assert response.status_code == 200
    assert response.json == {"partNumber": 1, "etag": md5(b"payload")}


@pytest.mark.parametrize("value", ["not base64!", b64(b"short")])
def test_content_md5_malformed_is_invalid_digest(
    flow: Flow, stored_state, value
) -> None:
    upload_id = flow.create()
    before = stored_state()
    response = flow.client.put(
        f"/file.bin?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1",
        data=b"payload",
        headers={"Content-MD5": value},
    )
    assert (response.status_code, response.text) == (
        400,
        "uploadPart: The Content-MD5 you specified is not valid. (InvalidDigest)",
    )
    assert stored_state() == before


def test_sha256_checksum(flow: Flow, stored_state) -> None:
    upload_id = flow.create()
    url = f"/file.bin?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1"
    before = stored_state()
    wrong = b64(hashlib.sha256(b"nope").digest())
    response = flow.client.put(
        url, data=b"data", headers={"x-amz-checksum-sha256": wrong}
    )
    assert (response.status_code, response.text) == (
        400,
        "uploadPart: The x-amz-checksum-sha256 you specified did not match what we received. (BadDigest)",
    )
    assert stored_state() == before
    right = b64(hashlib.sha256(b"data").digest())
    assert (
        flow.client.put(
            url, data=b"data", headers={"x-amz-checksum-sha256": right}
        ).status_code
        == 200
    )


def test_allowed_content_types(make_app: Any, stored_state) -> None:
    flow = Flow(
        make_app(MPUFLASK_PART_CONTENT_TYPES="image/png,image/jpeg").test_client()
    )
    upload_id = flow.create()
    before = stored_state()
    url = f"/file.bin?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1"
    response = flow.client.put(url, data=b"x", content_type="text/html")
    assert (response.status_code, response.text) == (
        415,
        "uploadPart: Content-Type 'text/html' is not accepted; allowed: image/jpeg, image/png. (allowed_content_types)",
    )
    assert stored_state() == before
    assert flow.client.put(url, data=b"x", content_type="image/png").status_code == 200


def test_refused_mid_stream_leaves_no_bytes_on_disk(
    make_app: Any, stored_state, temp_files
) -> None:
    app = make_app(MPUFLASK_CHUNK_SIZE=1024)
    seen = []

    class StopAfterTwoChunks:
        def update(self, chunk: bytes) -> None:
            seen.append(len(chunk))
            if len(seen) == 2:
                raise Forbidden("uploadPart: refused mid-stream (test_rule)")

        def finish(self) -> None:
            pass

    app.extensions["mpuflask"].validate_part(lambda part: StopAfterTwoChunks())
    flow = Flow(app.test_client())
    upload_id = flow.create()
    before = stored_state()
    response = flow.put_part(upload_id, 1, b"z" * 10_000)
    assert (response.status_code, response.text) == (
        403,
        "uploadPart: refused mid-stream (test_rule)",
    )
    assert seen == [1024, 1024]
    assert stored_state() == before
    assert temp_files() == []
    # The upload stays usable: the same part can be sent again.
    app.extensions["mpuflask"].part_validators.clear()
    assert flow.put_part(upload_id, 1, b"z" * 10_000).status_code == 200


def test_failing_hook_fails_closed(make_app: Any, stored_state, caplog) -> None:
    app = make_app(PROPAGATE_EXCEPTIONS=False)

    @app.extensions["mpuflask"].validate_part
    def broken(part: PartInfo) -> None:
        raise RuntimeError("bug in the integrator's hook")

    flow = Flow(app.test_client())
    upload_id = flow.create()
    before = stored_state()
    with caplog.at_level(logging.ERROR):
        response = flow.put_part(upload_id, 1, b"data")
    assert (response.status_code, response.text) == (500, "Internal Server Error")
    assert "bug in the integrator's hook" in caplog.text
    assert stored_state() == before
