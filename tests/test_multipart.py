"""The multipart actions (shared/spec, "The multipart rules"): create, parts,
complete, abort, listparts and the metadata kept. What the rules refuse, and
their edges, is in test_multipart_rules.py."""

from __future__ import annotations

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


def test_part_numbers_may_have_gaps(flow: Flow) -> None:
    upload_id = flow.create()
    a = flow.part(upload_id, 2, BIG)
    b = flow.part(upload_id, 9, b"end")
    flow.complete(upload_id, [a, b])
    assert flow.get().data == BIG + b"end"


def test_abort_removes_parts_from_disk(flow: Flow, stored_state) -> None:
    upload_id = flow.create()
    flow.part(upload_id, 1, b"secret bytes")
    assert flow.abort(upload_id).status_code == 204
    assert stored_state() == {}
    assert flow.abort(upload_id).status_code == 204
    assert flow.abort("never-existed").status_code == 204


def test_complete_replaces_existing_object_whole(flow: Flow, stored_state) -> None:
    flow.upload([b"first version"])
    flow.upload([b"second"])
    assert flow.get().data == b"second"
    assert not holds(stored_state(), b"first version")


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
