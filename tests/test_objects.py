"""Reading and deleting objects: GET, HEAD, ranges, conditionals, delete."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import MIN_PART
from .conftest import Flow
from .conftest import stored_files
from .oracle import multipart_etag

PARTS = [
    b"0123456789" * (MIN_PART // 10 + 1),
    b"abcdefghij" * (MIN_PART // 10 + 1),
    b"tail",
]
DATA = b"".join(PARTS)
SIZE = len(DATA)
ETAG = f'"{multipart_etag(PARTS)}"'


@pytest.fixture
def stored(flow: Flow) -> Flow:
    flow.upload(PARTS, key="obj", **{"Content-Type": "text/plain"})
    return flow


def test_get_headers(stored: Flow) -> None:
    got = stored.get("obj")
    assert got.status_code == 200
    assert got.data == DATA
    assert got.headers["etag"] == ETAG
    assert got.headers["Content-Length"] == str(SIZE)
    assert got.headers["Content-Type"] == "text/plain"
    assert got.headers["Accept-Ranges"] == "bytes"
    assert "Last-Modified" in got.headers
    assert "Content-Disposition" not in got.headers


def test_get_without_stored_type_is_octet_stream(flow: Flow) -> None:
    flow.upload([b"x"], key="plain")
    assert flow.get("plain").headers["Content-Type"] == "application/octet-stream"


def test_head_has_headers_no_body(stored: Flow) -> None:
    head = stored.client.head("/obj?action=get")
    assert head.status_code == 200
    assert head.data == b""
    assert head.headers["Content-Length"] == str(SIZE)
    assert head.headers["etag"] == ETAG


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=5-20", 5, 20),
        (f"bytes={MIN_PART - 3}-{MIN_PART + 3}", MIN_PART - 3, MIN_PART + 3),
        ("bytes=100-", 100, SIZE - 1),
        ("bytes=-7", SIZE - 7, SIZE - 1),
        (f"bytes=10-{SIZE + 100}", 10, SIZE - 1),
        (f"bytes=-{SIZE + 5}", 0, SIZE - 1),
    ],
)
def test_ranges(stored: Flow, header, start, end) -> None:
    got = stored.get("obj", Range=header)
    assert got.status_code == 206
    assert got.data == DATA[start : end + 1]
    assert got.headers["Content-Range"] == f"bytes {start}-{end}/{SIZE}"
    assert got.headers["Content-Length"] == str(end - start + 1)


@pytest.mark.parametrize("header", [f"bytes={SIZE}-", f"bytes={SIZE + 10}-{SIZE + 20}"])
def test_unsatisfiable_range_is_416(stored: Flow, header) -> None:
    got = stored.get("obj", Range=header)
    assert got.status_code == 416
    assert got.headers["Content-Range"] == f"bytes */{SIZE}"


def test_conditionals(stored: Flow) -> None:
    last_modified = stored.get("obj").headers["Last-Modified"]
    cases = [
        ({"If-None-Match": ETAG}, 304),
        ({"If-None-Match": '"other"'}, 200),
        ({"If-None-Match": "*"}, 304),
        ({"If-Match": ETAG}, 200),
        ({"If-Match": '"other"'}, 412),
        ({"If-Match": '"other"', "Range": "bytes=0-3"}, 412),
        ({"If-Modified-Since": last_modified}, 304),
        ({"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}, 200),
        ({"If-Unmodified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}, 412),
        ({"If-None-Match": '"other"', "If-Modified-Since": last_modified}, 200),
    ]
    for headers, status in cases:
        got = stored.get("obj", **headers)
        assert got.status_code == status, headers
        if status != 200:
            assert got.data == b""
            assert got.headers["etag"] == ETAG


def test_delete(stored: Flow, stored_state) -> None:
    response = stored.client.delete("/obj?action=delete")
    assert response.status_code == 204
    assert response.data == b""
    assert stored.get("obj").status_code == 404
    assert stored_state() == {}
    assert stored.client.delete("/obj?action=delete").status_code == 204


@pytest.mark.filesystem_only(
    "S3 cannot pin an old version: tests/s3 checks the reader fails cleanly"
)
def test_reader_keeps_its_version_through_overwrite_and_delete(
    app, stored: Flow, data_dir: Path
) -> None:
    """A GET that has started streams the whole old version, whatever happens."""
    bucket = app.extensions["mpuflask"].bucket
    body = bucket.get("obj")
    first = body.read(10)
    stored.upload([b"new version"], key="obj")
    stored.client.delete("/obj?action=delete")
    stored.upload([b"newer still"], key="obj")
    rest = body.read()
    assert first + rest == DATA
    body.close()
    assert stored.get("obj").data == b"newer still"
    bucket.sweep()
    assert DATA[:100] not in b"".join(stored_files(data_dir).values())
