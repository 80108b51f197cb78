"""The multipart rules (shared/spec, "The multipart rules") at their edges:
part sizes at complete, part numbers, upload IDs (unknown, bound to their key,
gone once ended), complete bodies, size limits and metadata no header can
carry. Each refusal answers R2's text and changes nothing."""

from __future__ import annotations

import io

import pytest

from .conftest import MIN_PART
from .conftest import Flow


@pytest.mark.parametrize(
    ("sizes", "text"),
    [
        (
            [MIN_PART - 1, 10],
            "Your proposed upload is smaller than the minimum allowed object size. (10011)",
        ),
        (
            [MIN_PART, MIN_PART - 1, 5],
            "Your proposed upload is smaller than the minimum allowed object size. (10011)",
        ),
        (
            [MIN_PART, MIN_PART + 1, 5],
            "All non-trailing parts must have the same length. (10048)",
        ),
        (
            [MIN_PART, MIN_PART + 1],
            "All non-trailing parts must have the same length. (10048)",
        ),
    ],
)
def test_size_rules_at_complete(flow: Flow, sizes, text) -> None:
    upload_id = flow.create()
    listed = [flow.part(upload_id, n, b"z" * size) for n, size in enumerate(sizes, 1)]
    response = flow.complete_raw(upload_id, listed)
    assert response.status_code == 400
    assert response.text == f"completeMultipartUpload: {text}"
    assert flow.get().status_code == 404
    # The upload is unchanged: a valid list still completes.
    flow.complete(upload_id, listed[:1])


@pytest.mark.parametrize(
    "sizes",
    [
        [MIN_PART],
        [5],
        [MIN_PART, 1],
        [MIN_PART, MIN_PART],
        [MIN_PART, MIN_PART, MIN_PART],
    ],
)
def test_size_rules_accept(flow: Flow, sizes) -> None:
    parts = [bytes([n]) * size for n, size in enumerate(sizes, 1)]
    flow.upload(parts)
    assert flow.get().data == b"".join(parts)


@pytest.mark.parametrize(
    "number", ["0", "10001", "-1", "abc", "1.5", "2x", " 1", "", "1e3"]
)
def test_bad_part_numbers(flow: Flow, stored_state, number) -> None:
    upload_id = flow.create()
    before = stored_state()
    response = flow.put_part(upload_id, number, b"data")
    assert response.status_code == 400
    assert response.text == (
        f"Part number must be between 1 and 10000 (inclusive). Actual value was: {number}"
    )
    assert stored_state() == before


@pytest.mark.parametrize("number", [1, 10000])
def test_part_number_bounds_accepted(flow: Flow, number) -> None:
    upload_id = flow.create()
    assert flow.put_part(upload_id, number, b"x").status_code == 200
    assert flow.put_part(upload_id, f"0{number}", b"x").status_code == 200


def test_unknown_upload_id(flow: Flow, stored_state) -> None:
    for upload_id in ["nope", "../../etc", "a/b", "x" * 300]:
        response = flow.client.put(
            "/file.bin",
            query_string={
                "uploadId": upload_id,
                "action": "mpu-uploadpart",
                "partNumber": "1",
            },
            data=b"data",
        )
        assert response.status_code == 400
        assert response.text == (
            "uploadPart: The specified multipart upload does not exist. (10024)"
        )
    assert stored_state() == {}


def test_upload_id_is_bound_to_its_key(flow: Flow, stored_state) -> None:
    upload_id = flow.create("one")
    part = flow.part(upload_id, 1, b"x", key="one")
    response = flow.put_part(upload_id, 1, b"y", key="two")
    assert response.status_code == 400
    assert (
        response.text
        == "uploadPart: The specified multipart upload does not exist. (10024)"
    )
    response = flow.complete_raw(upload_id, [part], key="two")
    assert response.text == (
        "completeMultipartUpload: The specified multipart upload does not exist. (10024)"
    )
    assert flow.abort(upload_id, key="two").status_code == 204
    flow.complete(upload_id, [part], key="one")
    assert flow.get("one").data == b"x"
    assert flow.get("two").status_code == 404


@pytest.mark.parametrize("finish", ["complete", "abort"])
def test_upload_is_gone_after_complete_or_abort(flow: Flow, finish) -> None:
    upload_id = flow.create()
    part = flow.part(upload_id, 1, b"x")
    if finish == "complete":
        flow.complete(upload_id, [part])
    else:
        assert flow.abort(upload_id).status_code == 204
    response = flow.put_part(upload_id, 2, b"late")
    assert (
        response.text
        == "uploadPart: The specified multipart upload does not exist. (10024)"
    )
    response = flow.complete_raw(upload_id, [part])
    assert response.text == (
        "completeMultipartUpload: The specified multipart upload does not exist. (10024)"
    )
    assert flow.abort(upload_id).status_code == 204


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b"", "Missing or incomplete body"),
        (b"null", "Missing or incomplete body"),
        (b"{not json", "Missing or incomplete body: the body is not valid JSON"),
        (
            b"[]",
            'Missing or incomplete body: expected {"parts": [{"partNumber": <integer>, "etag": "<string>"}, ...]}',
        ),
        (
            b"{}",
            'Missing or incomplete body: expected {"parts": [{"partNumber": <integer>, "etag": "<string>"}, ...]}',
        ),
        (
            b'{"parts": 3}',
            'Missing or incomplete body: expected {"parts": [{"partNumber": <integer>, "etag": "<string>"}, ...]}',
        ),
        (
            b'{"parts": [1]}',
            'Missing or incomplete body: parts[0] needs an integer "partNumber" and a string "etag"',
        ),
        (
            b'{"parts": [{"partNumber": "1a", "etag": "x"}]}',
            'Missing or incomplete body: parts[0] needs an integer "partNumber" and a string "etag"',
        ),
        (
            b'{"parts": [{"partNumber": true, "etag": "x"}]}',
            'Missing or incomplete body: parts[0] needs an integer "partNumber" and a string "etag"',
        ),
        (
            b'{"parts": [{"partNumber": 1}]}',
            'Missing or incomplete body: parts[0] needs an integer "partNumber" and a string "etag"',
        ),
        (
            b'{"parts": [{"partNumber": 0, "etag": "x"}]}',
            "Part number must be between 1 and 10000 (inclusive). Actual value was: 0",
        ),
        (
            b'{"parts": [{"partNumber": 1, "etag": "x"}, {"partNumber": 2, "etag": "y"}, {"partNumber": 1, "etag": "x"}]}',
            "completeMultipartUpload: Part number 1 is listed more than once; each part may appear only once. (10025)",
        ),
        (
            b'{"parts": [{"partNumber": 1, "etag": "x"}, {"partNumber": 1, "etag": "x"}]}',
            "completeMultipartUpload: Part number 1 is listed more than once; each part may appear only once. (10025)",
        ),
        (
            b'{"parts": [{"partNumber": 1, "etag": "0123"}]}',
            "completeMultipartUpload: One or more of the specified parts could not be found. (10025)",
        ),
        (
            b'{"parts": [{"partNumber": 7, "etag": "0123"}]}',
            "completeMultipartUpload: One or more of the specified parts could not be found. (10025)",
        ),
    ],
)
def test_bad_complete_bodies_change_nothing(
    flow: Flow, stored_state, body, text
) -> None:
    upload_id = flow.create()
    part = flow.part(upload_id, 1, b"payload")
    before = stored_state()
    response = flow.client.post(
        f"/file.bin?action=mpu-complete&uploadId={upload_id}",
        data=body,
        content_type="application/json",
    )
    assert (response.status_code, response.text) == (400, text)
    assert stored_state() == before
    assert flow.get().status_code == 404
    flow.complete(upload_id, [part])


def test_complete_body_size_is_limited(flow: Flow) -> None:
    upload_id = flow.create()
    response = flow.client.post(
        f"/file.bin?action=mpu-complete&uploadId={upload_id}",
        data=b" " * (2 * 1024 * 1024 + 1),
    )
    assert response.status_code == 413
    assert response.text == "Request body too large: at most 2097152 bytes"


def test_part_over_max_size_is_refused_before_reading(
    app, flow: Flow, stored_state
) -> None:
    app.config["MPUFLASK_MAX_PART_SIZE"] = 10
    upload_id = flow.create()
    before = stored_state()
    response = flow.put_part(upload_id, 1, b"x" * 11)
    assert response.status_code == 400
    assert response.text == (
        "uploadPart: Your proposed upload exceeds the maximum allowed object size. (100100)"
    )
    # Without a Content-Length (chunked), it is refused mid-stream.
    response = flow.client.put(
        f"/file.bin?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1",
        input_stream=io.BytesIO(b"x" * 12),
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 400
    assert response.text == (
        "uploadPart: Your proposed upload exceeds the maximum allowed object size. (100100)"
    )
    assert stored_state() == before


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Content-Type", "text/plain\x01x"),
        ("Content-Type", "a\x00b"),
        ("Content-Disposition", "attachment; filename=\u0100.txt"),
        ("Cache-Control", "max-age=1\x1f"),
        ("Content-Type", "text/plain\x7fx"),  # DEL: gunicorn refuses to send it
    ],
)
def test_metadata_no_header_can_carry_is_refused_at_create(
    client, stored_state, name: str, value: str
) -> None:
    """A value a GET could never send back (a control character, or one
    beyond latin-1: only a WSGI server laxer than gunicorn hands it over)
    is refused at create: before, the upload was made, then unusable
    (10024 on every request, its record read as corrupt)."""
    before = stored_state()
    response = client.post("/k?action=mpu-create", headers={name: value})
    assert (response.status_code, response.text) == (
        400,
        f"createMultipartUpload: the {name} header holds a character no HTTP "
        "header can carry (a control character, or one beyond latin-1)",
    )
    assert stored_state() == before
