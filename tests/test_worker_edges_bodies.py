"""The Worker edges of a part's body (issue 12, items 3 and 9; the others are
in test_worker_edges.py): a part sent with Content-Length: 0 is a zero-byte
part, no body at all is still missing, and a body in a transfer coding we do
not decode is refused (501) with nothing stored, while chunked alone is read.
"""

from __future__ import annotations

import io

import pytest

from .conftest import Flow
from .oracle import md5
from .oracle import multipart_etag
from .worker_edges_support import PARTS

# -- 3. a part sent with Content-Length: 0 --------------------------------------------

EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"


def _put_empty(flow: Flow, upload_id: str, number: int = 1, key: str = "file.bin"):
    return flow.client.put(
        f"/{key}?action=mpu-uploadpart&uploadId={upload_id}&partNumber={number}",
        environ_overrides={"CONTENT_LENGTH": "0"},
    )


def test_content_length_zero_is_a_zero_byte_part(flow: Flow) -> None:
    upload_id = flow.create()
    response = _put_empty(flow, upload_id)
    assert (response.status_code, response.json) == (
        200,
        {"partNumber": 1, "etag": EMPTY_MD5},
    )
    assert flow.client.get(f"/file.bin?action=mpu-listparts&uploadId={upload_id}").json[
        "parts"
    ] == [{"partNumber": 1, "etag": EMPTY_MD5, "size": 0}]
    etag = flow.complete(upload_id, [response.json])
    assert etag == f'"{multipart_etag([b""])}"'
    got = flow.get()
    assert (got.status_code, got.data, got.headers["etag"]) == (200, b"", etag)
    assert got.headers["Content-Length"] == "0"


def test_zero_byte_last_part_after_full_parts(flow: Flow) -> None:
    upload_id = flow.create()
    first = flow.part(upload_id, 1, PARTS[0])
    last = _put_empty(flow, upload_id, 2)
    assert last.status_code == 200, last.text
    etag = flow.complete(upload_id, [first, last.json])
    assert etag == f'"{multipart_etag([PARTS[0], b""])}"'
    assert flow.get().data == PARTS[0]


def test_zero_byte_part_replaces_an_earlier_part(flow: Flow) -> None:
    upload_id = flow.create()
    flow.part(upload_id, 1, b"earlier bytes")
    response = _put_empty(flow, upload_id)
    assert response.json == {"partNumber": 1, "etag": EMPTY_MD5}
    flow.complete(upload_id, [response.json])
    assert flow.get().data == b""


def test_no_body_at_all_is_still_missing(flow: Flow, stored_state) -> None:
    """No Content-Length and no Transfer-Encoding: HTTP/1.1 has no body there."""
    upload_id = flow.create()
    before = stored_state()
    response = flow.client.put(
        f"/file.bin?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1"
    )
    assert (response.status_code, response.text) == (400, "Missing request body")
    assert stored_state() == before


# -- 9. a body in a transfer coding we do not decode --------------------------------


@pytest.mark.parametrize(
    "coding",
    [
        "gzip, chunked",
        "GZIP,chunked",
        "deflate, chunked",
        "compress, chunked",
        "br, chunked",
        "chunked;x=1",
    ],
)
def test_part_in_an_unknown_transfer_coding_is_refused(
    flow: Flow, stored_state, temp_files, coding: str
) -> None:
    upload_id = flow.create()
    before = stored_state()
    response = flow.client.put(
        f"/file.bin?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1",
        data=b"\x1f\x8b compressed bytes",
        headers={"Transfer-Encoding": coding},
    )
    assert (response.status_code, response.text) == (
        501,
        f"Transfer-Encoding {coding} is not supported: send the body as it is, "
        "with Content-Length or chunked; nothing was stored.",
    )
    assert response.headers["Connection"] == "close"
    assert stored_state() == before
    assert temp_files() == []
    assert (
        flow.client.get(f"/file.bin?action=mpu-listparts&uploadId={upload_id}").json[
            "parts"
        ]
        == []
    )


def test_complete_in_an_unknown_transfer_coding_is_refused(
    flow: Flow, stored_state
) -> None:
    upload_id = flow.create()
    part = flow.part(upload_id, 1, b"payload")
    before = stored_state()
    response = flow.client.post(
        f"/file.bin?action=mpu-complete&uploadId={upload_id}",
        json={"parts": [part]},
        headers={"Transfer-Encoding": "gzip, chunked"},
    )
    assert response.status_code == 501
    assert stored_state() == before
    assert flow.get().status_code == 404


@pytest.mark.parametrize("coding", ["chunked", "identity, chunked", "Chunked"])
def test_chunked_alone_is_read(flow: Flow, coding: str) -> None:
    upload_id = flow.create()
    response = flow.client.put(
        f"/file.bin?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1",
        input_stream=io.BytesIO(b"chunked body"),
        headers={"Transfer-Encoding": coding},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert (response.status_code, response.json) == (
        200,
        {"partNumber": 1, "etag": md5(b"chunked body")},
    )
