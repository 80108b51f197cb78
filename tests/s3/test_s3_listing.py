"""Listing on the s3 store: the record prefix stays hidden, objects of other
S3 clients are listed as GET reads them.

The behavioural listing suite (tests/test_listing.py) runs on this store too;
here, what only an engine shared with the gateway's own records can show.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from mpuflask import create_app
from mpuflask.storage.s3list import beyond

from ..conftest import MIN_PART
from ..conftest import Flow


@pytest.fixture
def app(s3_engine: Any, s3_bucket: str, spool_dir: Path) -> Flask:
    return create_app(
        {
            "TESTING": True,
            **s3_engine.settings(s3_bucket),
            "MPUFLASK_MIN_PART_SIZE": MIN_PART,
            "MPUFLASK_S3_SPOOL_DIR": str(spool_dir),
        }
    )


def listing(app: Flask, query: str = "") -> dict[str, Any]:
    answer: dict[str, Any] = app.test_client().get(f"/?action=list{query}").json  # type: ignore[assignment]
    return answer


def every_key(app: Flask, query: str) -> list[str]:
    seen: list[str] = []
    cursor = ""
    for _ in range(100):
        answer = listing(app, query + cursor)
        seen += [o["key"] for o in answer["objects"]]
        seen += [f"PRE {p}" for p in answer["delimitedPrefixes"]]
        if not answer["truncated"]:
            return seen
        cursor = "&cursor=" + answer["cursor"]
    raise AssertionError("the cursor never ended")


def test_the_record_prefix_is_hidden(
    app: Flask, s3_engine: Any, s3_bucket: str
) -> None:
    flow = Flow(app.test_client())
    for key in ["-a", ".mine", ".mpuflaskz", "z"]:
        flow.upload([b"x"], key=key)
    for key in ["open/1", "open/2"]:  # records (and staged parts) in .mpuflask/
        upload_id = flow.create(key)
        flow.part(upload_id, 1, b"p" * MIN_PART, key=key)
    engine_keys = [item["Key"] for item in s3_engine.objects(s3_bucket)]
    assert any(key.startswith(".mpuflask/") for key in engine_keys)
    assert every_key(app, "") == ["-a", ".mine", ".mpuflaskz", "z"]
    assert every_key(app, "&limit=1") == ["-a", ".mine", ".mpuflaskz", "z"]
    assert every_key(app, "&delimiter=/") == ["-a", ".mine", ".mpuflaskz", "z"]
    assert every_key(app, "&prefix=.mpuflask/") == []
    assert every_key(app, "&prefix=.mpuflask/uploads/&delimiter=/") == []
    # A folded prefix that holds records and a key of the user's: listed.
    assert sorted(every_key(app, "&delimiter=m")) == ["-a", "PRE .m", "z"]
    assert every_key(app, "&prefix=.m") == [".mine", ".mpuflaskz"]
    flow.client.delete("/.mine?action=delete")
    flow.client.delete("/.mpuflaskz?action=delete")
    # ... and once only records are under it: not.
    assert sorted(every_key(app, "&delimiter=m")) == ["-a", "z"]
    assert every_key(app, "&prefix=.m") == []


def test_objects_written_by_other_s3_clients_are_listed(
    app: Flask, s3_engine: Any, s3_bucket: str
) -> None:
    s3_engine.client.put_object(
        Bucket=s3_bucket, Key="other", Body=b"hello", ContentType="text/plain"
    )
    answer = listing(app)
    assert [(o["key"], o["size"], o["httpMetadata"]) for o in answer["objects"]] == [
        ("other", 5, {"contentType": "text/plain"})
    ]


def test_beyond_is_the_greatest_key_under_the_prefix() -> None:
    last = beyond(".mpuflask/")
    assert last.startswith(".mpuflask/")
    assert len(last.encode()) == 1024
    assert len(beyond("x" * 1021).encode()) == 1024
    for tail in ["\U0010ffff" * 253 + "\u07ff", "\uffff", "z" * 1000]:
        key = (".mpuflask/" + tail).encode()[:1024].decode(errors="ignore")
        assert key.encode() <= last.encode()
