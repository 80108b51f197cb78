"""The multipart actions and every R2 rule (shared/spec, "The multipart rules")."""

from __future__ import annotations

import io

import pytest

from .conftest import MIN_PART
from .conftest import Flow
from .conftest import holds
from .oracle import md5
from .oracle import multipart_etag

BIG = b"a" * MIN_PART
BIG2 = b"b" * MIN_PART


def test_create_answers_key_and_upload_id(client) -> None:
    response = client.post("/dir/file.bin?action=mpu-create")
    assert response.status_code == 200
    assert list(response.json) == ["key", "uploadId", "expires"]
    assert response.json["key"] == "dir/file.bin"
    assert response.text.startswith('{"key":"dir/file.bin","uploadId":"')


def test_create_gives_distinct_upload_ids(flow: Flow) -> None:
    assert flow.create() != flow.create()


def test_part_etag_is_hex_md5(flow: Flow) -> None:
    upload_id = flow.create()
    response = flow.put_part(upload_id, 1, b"hello")
    assert response.status_code == 200
    assert response.text == f'{{"partNumber":1,"etag":"{md5(b"hello")}"}}'


def test_part_answer_has_a_quoted_etag_header(flow: Flow) -> None:
    """As S3's UploadPart: clients such as Uppy read the part's etag there."""
    upload_id = flow.create()
    response = flow.put_part(upload_id, 1, b"hello")
    assert response.headers["ETag"] == f'"{md5(b"hello")}"'
    assert response.json["etag"] == md5(b"hello")


def test_round_trip_and_object_etag(flow: Flow) -> None:
    parts = [BIG, BIG2, b"tail"]
    etag = flow.upload(parts)
    assert etag == f'"{multipart_etag(parts)}"'
    got = flow.get()
    assert got.status_code == 200
    assert got.data == b"".join(parts)
    assert got.headers["etag"] == etag
    assert got.headers["Content-Length"] == str(len(b"".join(parts)))


def test_parts_uploaded_out_of_order(flow: Flow) -> None:
    upload_id = flow.create()
    third = flow.part(upload_id, 3, b"end")
    first = flow.part(upload_id, 1, BIG)
    second = flow.part(upload_id, 2, BIG2)
    flow.complete(upload_id, [first, second, third])
    assert flow.get().data == BIG + BIG2 + b"end"


def test_complete_answers_empty_body_with_etag_header(flow: Flow) -> None:
    upload_id = flow.create()
    part = flow.part(upload_id, 1, b"x")
    response = flow.complete_raw(upload_id, [part])
    assert response.status_code == 200
    assert response.data == b""
    assert response.headers["etag"] == f'"{multipart_etag([b"x"])}"'


def test_reuploaded_part_replaces_the_earlier(flow: Flow, stored_state) -> None:
    upload_id = flow.create()
    old = flow.part(upload_id, 1, b"old bytes")
    new = flow.part(upload_id, 1, b"new bytes")
    stale = flow.complete_raw(upload_id, [old])
    assert stale.status_code == 400
    assert stale.text == (
        "completeMultipartUpload: One or more of the specified parts could not be found. (10025)"
    )
    flow.complete(upload_id, [new])
    assert flow.get().data == b"new bytes"
    assert not holds(stored_state(), b"old bytes")


def test_reupload_with_same_bytes_keeps_etag_valid(flow: Flow) -> None:
    upload_id = flow.create()
    first = flow.part(upload_id, 1, b"same")
    again = flow.part(upload_id, 1, b"same")
    assert first == again
    flow.complete(upload_id, [first])
    assert flow.get().data == b"same"


def test_etag_in_quotes_is_accepted(flow: Flow) -> None:
    upload_id = flow.create()
    part = flow.part(upload_id, 1, b"q")
    flow.complete(upload_id, [{"partNumber": 1, "etag": f'"{part["etag"]}"'}])


def test_unlisted_parts_are_discarded(flow: Flow, stored_state) -> None:
    upload_id = flow.create()
    first = flow.part(upload_id, 1, BIG)
    flow.part(upload_id, 2, b"unlisted!")
    flow.complete(upload_id, [first])
    assert flow.get().data == BIG
    assert not holds(stored_state(), b"unlisted!")


def test_empty_complete_makes_an_empty_object(flow: Flow) -> None:
    upload_id = flow.create()
    etag = flow.complete(upload_id, [])
    assert etag == '"d41d8cd98f00b204e9800998ecf8427e-0"'
    got = flow.get()
    assert (got.status_code, got.data) == (200, b"")


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


def test_part_numbers_may_have_gaps(flow: Flow) -> None:
    upload_id = flow.create()
    a = flow.part(upload_id, 2, BIG)
    b = flow.part(upload_id, 9, b"end")
    flow.complete(upload_id, [a, b])
    assert flow.get().data == BIG + b"end"


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


def test_abort_removes_parts_from_disk(flow: Flow, stored_state) -> None:
    upload_id = flow.create()
    flow.part(upload_id, 1, b"secret bytes")
    assert flow.abort(upload_id).status_code == 204
    assert stored_state() == {}
    assert flow.abort(upload_id).status_code == 204
    assert flow.abort("never-existed").status_code == 204


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


def test_complete_replaces_existing_object_whole(flow: Flow, stored_state) -> None:
    flow.upload([b"first version"])
    flow.upload([b"second"])
    assert flow.get().data == b"second"
    assert not holds(stored_state(), b"first version")


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


def test_http_metadata_is_kept(flow: Flow) -> None:
    headers = {
        "Content-Type": "image/png",
        "Content-Language": "fr",
        "Content-Disposition": 'attachment; filename="a.png"',
        "Content-Encoding": "gzip",
        "Cache-Control": "max-age=60",
        "Expires": "Wed, 21 Oct 2037 07:28:00 GMT",
        "X-Other": "not kept",
    }
    flow.upload([b"png"], **headers)
    got = flow.get()
    for name, value in headers.items():
        if name == "X-Other":
            assert name not in got.headers
        else:
            assert got.headers[name] == value


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


def test_metadata_of_any_latin1_text_is_kept(flow: Flow) -> None:
    """Tabs and the bytes 0x80-0xFF (obs-text, as a WSGI server hands over
    UTF-8) are header text: kept and sent back."""
    value = 'attachment;\tfilename="caf\xc3\xa9.txt"'
    flow.upload([b"x"], **{"Content-Disposition": value})
    assert flow.get().headers["Content-Disposition"] == value


def test_listparts(flow: Flow) -> None:
    upload_id = flow.create()
    flow.part(upload_id, 2, b"bb")
    flow.part(upload_id, 1, b"a")
    response = flow.client.get(f"/file.bin?action=mpu-listparts&uploadId={upload_id}")
    assert response.status_code == 200
    assert response.json["parts"] == [
        {"partNumber": 1, "etag": md5(b"a"), "size": 1},
        {"partNumber": 2, "etag": md5(b"bb"), "size": 2},
    ]
    assert response.json["uploadId"] == upload_id
    assert "expires" in response.json
    gone = flow.client.get("/file.bin?action=mpu-listparts&uploadId=nope")
    assert (
        gone.text == "listParts: The specified multipart upload does not exist. (10024)"
    )
