"""Engine requests per call: pinned, so a change that adds one is a decision.

A part costs its UploadPart and a read of the upload's record before and after
(after: radosgw acknowledges a part that races a complete and drops it, so the
gateway looks for a complete under way before it answers 200).

Counted as botocore sends them (``before-send``: every HTTP request, retries
included) on both of the store's clients. docs/scale-out.md explains each.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from ..conftest import MIN_PART
from ..conftest import Flow
from .conftest import Gateway
from .conftest import s3_bucket_of

#: (call, engine requests) on an engine that drops unlisted parts (in place)
#: and on one that must list every part (staged: radosgw).
EXPECTED = {
    "inplace": {
        "create": ["CreateMultipartUpload", "PutObject"],
        "part": ["GetObject", "UploadPart", "GetObject"],
        "small part": ["GetObject", "UploadPart", "GetObject"],
        "listparts": ["GetObject", "ListParts"],
        "complete": [
            "GetObject",
            "ListParts",
            "PutObject",  # the claim
            "CompleteMultipartUpload",
            "DeleteObjects",  # the record
        ],
        "abort": ["GetObject", "AbortMultipartUpload", "DeleteObjects"],
        "get": ["HeadObject", "GetObject"],
    },
    "staged": {
        "create": ["CreateMultipartUpload", "PutObject"],
        "part": ["GetObject", "UploadPart", "GetObject"],
        "small part": ["GetObject", "PutObject", "UploadPart", "GetObject"],
        "listparts": ["GetObject", "ListParts"],
        "complete": [
            "GetObject",
            "ListParts",
            "PutObject",  # the claim
            "CompleteMultipartUpload",  # the staging upload
            "CopyObject",  # to the key
            "ListObjectsV2",  # the small parts
            "DeleteObjects",  # staging object, small parts, record
        ],
        "complete leaving parts out": [
            "GetObject",
            "ListParts",
            "PutObject",  # the claim
            "CompleteMultipartUpload",  # the staging upload, whole
            "CreateMultipartUpload",  # of the key
            "UploadPartCopy",  # part 1's bytes
            "CompleteMultipartUpload",
            "DeleteObjects",  # no small part: nothing to list
        ],
        "abort": [
            "GetObject",
            "AbortMultipartUpload",
            "ListObjectsV2",
            "DeleteObjects",
        ],
        "get": ["HeadObject", "GetObject"],
    },
}


class Requests:
    """The engine requests the app's store sends, by operation, in order."""

    def __init__(self, app: Flask) -> None:
        self.seen: list[str] = []
        engine = s3_bucket_of(app).engine
        for client in (engine.client, engine.stream_client):
            client.meta.events.register("before-send.s3", self._count)

    def _count(self, event_name: str, **_: Any) -> None:
        self.seen.append(event_name.rsplit(".", 1)[1])

    def during(self, step: Any) -> tuple[Any, list[str]]:
        self.seen.clear()
        result = step()
        return result, list(self.seen)


@pytest.mark.parametrize("layout", ["inplace", "staged"])
def test_engine_requests_per_call(gateway: Gateway, layout: str) -> None:
    app = gateway(
        MPUFLASK_S3_STAGE_UPLOADS=layout == "staged", MPUFLASK_SWEEP_ON_START=False
    )
    flow = Flow(app.test_client())
    requests = Requests(app)
    expected = EXPECTED[layout]
    seen: dict[str, list[str]] = {}

    upload_id, seen["create"] = requests.during(lambda: flow.create("k"))
    big, seen["part"] = requests.during(
        lambda: flow.part(upload_id, 1, b"a" * MIN_PART, "k")
    )
    small, seen["small part"] = requests.during(
        lambda: flow.part(upload_id, 2, b"tail", "k")
    )
    _, seen["listparts"] = requests.during(
        lambda: flow.client.get(f"/k?action=mpu-listparts&uploadId={upload_id}")
    )
    _, seen["complete"] = requests.during(
        lambda: flow.complete(upload_id, [big, small], "k")
    )
    _, seen["get"] = requests.during(lambda: flow.get("k"))
    aborted = flow.create("gone")
    flow.part(aborted, 1, b"a" * MIN_PART, "gone")
    _, seen["abort"] = requests.during(lambda: flow.abort(aborted, "gone"))
    if layout == "staged":
        left = flow.create("subset")
        first = flow.part(left, 1, b"a" * MIN_PART, "subset")
        flow.part(left, 2, b"b" * MIN_PART, "subset")
        _, seen["complete leaving parts out"] = requests.during(
            lambda: flow.complete(left, [first], "subset")
        )
    assert seen == expected
