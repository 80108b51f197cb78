"""Hooks: auth (tokens; signed URLs in test_signing.py), ownership, validators."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from typing import Any

import pytest
from flask import Flask

from mpuflask.errors import Forbidden
from mpuflask.hooks import PartInfo
from mpuflask.hooks import RequestInfo

from .conftest import MIN_PART
from .conftest import Flow
from .oracle import md5

TOKENS = json.dumps(
    [
        {"token": "tok-alice", "identity": "alice"},
        {"token": "tok-bob", "identity": "bob"},
        {"token": "tok-reader", "identity": "reader", "actions": ["get"]},
        {"token": "tok-scoped", "identity": "scoped", "prefix": "public/"},
    ]
)
ALICE = {"Authorization": "Bearer tok-alice"}
BOB = {"Authorization": "Bearer tok-bob"}


class AuthFlow(Flow):
    """The user's steps, with headers on every request."""

    def __init__(self, client: Any, headers: dict[str, str]) -> None:
        super().__init__(client)
        self.headers = headers

    def req(self, method: str, url: str, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.open(url, method=method, headers=headers, **kwargs)


def every_action(upload_id: str, etag: str) -> list[tuple[str, str, dict[str, Any]]]:
    base = "/file.bin?uploadId=" + upload_id
    return [
        ("POST", "/file.bin?action=mpu-create", {}),
        ("PUT", base + "&action=mpu-uploadpart&partNumber=1", {"data": b"intruder"}),
        (
            "POST",
            base + "&action=mpu-complete",
            {"json": {"parts": [{"partNumber": 1, "etag": etag}]}},
        ),
        ("DELETE", base + "&action=mpu-abort", {}),
        ("GET", base + "&action=mpu-listparts", {}),
        ("GET", "/obj?action=get", {}),
        ("HEAD", "/obj?action=get", {}),
        ("DELETE", "/obj?action=delete", {}),
        ("GET", "/obj", {}),
    ]


@pytest.fixture
def token_app(make_app: Any) -> Flask:
    return make_app(MPUFLASK_AUTH_TOKENS=TOKENS)


def _seed_state(client: Any, headers: dict[str, str]) -> tuple[str, str]:
    """An object 'obj' and an open upload of 'file.bin' with part 1."""
    flow = AuthFlow(client, headers)
    created = flow.req("POST", "/obj?action=mpu-create").json["uploadId"]
    part = flow.req(
        "PUT", f"/obj?action=mpu-uploadpart&uploadId={created}&partNumber=1", data=b"o"
    ).json
    flow.req(
        "POST", f"/obj?action=mpu-complete&uploadId={created}", json={"parts": [part]}
    )
    upload_id = flow.req("POST", "/file.bin?action=mpu-create").json["uploadId"]
    etag = flow.req(
        "PUT",
        f"/file.bin?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1",
        data=b"mine",
    ).json["etag"]
    return upload_id, etag


@pytest.mark.parametrize(
    ("headers", "status", "text"),
    [
        (
            {},
            401,
            "Unauthorized: send 'Authorization: Bearer <token>' or use a signed URL",
        ),
        ({"Authorization": "Bearer wrong"}, 401, "Unauthorized: invalid bearer token"),
        (
            {"Authorization": "Basic dXNlcjpwdw=="},
            401,
            "Unauthorized: expected 'Authorization: Bearer <token>'",
        ),
        (
            {"Authorization": "Bearer "},
            401,
            "Unauthorized: expected 'Authorization: Bearer <token>'",
        ),
    ],
)
def test_every_action_without_valid_token_is_refused(
    token_app: Flask, stored_state, headers, status, text
) -> None:
    client = token_app.test_client()
    upload_id, etag = _seed_state(client, ALICE)
    before = stored_state()
    for method, url, kwargs in every_action(upload_id, etag):
        response = client.open(url, method=method, headers=headers, **kwargs)
        assert response.status_code == status, (method, url)
        if method != "HEAD":
            assert response.text == text, (method, url)
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="mpuflask"'
    assert stored_state() == before


def test_token_flow_works_as_the_seed_client_does(token_app: Flask) -> None:
    flow = AuthFlow(token_app.test_client(), ALICE)
    upload_id = flow.req("POST", "/big.bin?action=mpu-create").json["uploadId"]
    parts = [b"a" * MIN_PART, b"b" * 10]
    listed = [
        flow.req(
            "PUT",
            f"/big.bin?action=mpu-uploadpart&uploadId={upload_id}&partNumber={n}",
            data=data,
        ).json
        for n, data in enumerate(parts, 1)
    ]
    done = flow.req(
        "POST",
        f"/big.bin?action=mpu-complete&uploadId={upload_id}",
        json={"parts": listed},
    )
    assert done.status_code == 200
    got = flow.req("GET", "/big.bin?action=get")
    assert got.data == b"".join(parts)
    assert flow.req("HEAD", "/big.bin?action=get").status_code == 200
    assert flow.req("DELETE", "/big.bin?action=delete").status_code == 204


def test_token_limits_actions_and_prefix(token_app: Flask, stored_state) -> None:
    client = token_app.test_client()
    reader = {"Authorization": "Bearer tok-reader"}
    response = client.post("/x?action=mpu-create", headers=reader)
    assert (response.status_code, response.text) == (
        403,
        "Forbidden: this token may not use action mpu-create",
    )
    scoped = {"Authorization": "Bearer tok-scoped"}
    response = client.post("/private/x?action=mpu-create", headers=scoped)
    assert (response.status_code, response.text) == (
        403,
        "Forbidden: this token may only use keys under 'public/'",
    )
    assert stored_state() == {}
    assert client.post("/public/x?action=mpu-create", headers=scoped).status_code == 200
    assert client.get("/x?action=get", headers=reader).status_code == 404


def test_plain_token_list(make_app: Any) -> None:
    client = make_app(MPUFLASK_AUTH_TOKENS="one, two").test_client()
    assert (
        client.post(
            "/k?action=mpu-create", headers={"Authorization": "Bearer two"}
        ).status_code
        == 200
    )
    assert (
        client.post(
            "/k?action=mpu-create", headers={"Authorization": "Bearer three"}
        ).status_code
        == 401
    )


def test_an_upload_belongs_to_its_creator(token_app: Flask, stored_state) -> None:
    client = token_app.test_client()
    alice = AuthFlow(client, ALICE)
    upload_id = alice.req("POST", "/shared.bin?action=mpu-create").json["uploadId"]
    part = alice.req(
        "PUT",
        f"/shared.bin?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1",
        data=b"alice's",
    ).json
    before = stored_state()
    bob = AuthFlow(client, BOB)
    base = f"/shared.bin?uploadId={upload_id}"
    refusals = [
        (
            "PUT",
            base + "&action=mpu-uploadpart&partNumber=1",
            {"data": b"bob's"},
            "uploadPart",
        ),
        (
            "POST",
            base + "&action=mpu-complete",
            {"json": {"parts": [part]}},
            "completeMultipartUpload",
        ),
        ("DELETE", base + "&action=mpu-abort", {}, "abortMultipartUpload"),
        ("GET", base + "&action=mpu-listparts", {}, "listParts"),
    ]
    for method, url, kwargs, operation in refusals:
        response = bob.req(method, url, **kwargs)
        assert (response.status_code, response.text) == (
            403,
            f"{operation}: Forbidden: this upload belongs to another identity",
        )
    assert stored_state() == before
    done = alice.req("POST", base + "&action=mpu-complete", json={"parts": [part]})
    assert done.status_code == 200
    assert alice.req("GET", "/shared.bin?action=get").data == b"alice's"


# -- part validators -------------------------------------------------------------


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


def test_failing_auth_hook_fails_closed(make_app: Any, stored_state) -> None:
    app = make_app(PROPAGATE_EXCEPTIONS=False)

    @app.extensions["mpuflask"].authenticate
    def broken(req: RequestInfo) -> str:
        raise KeyError("oops")

    response = app.test_client().post("/k?action=mpu-create")
    assert response.status_code == 500
    assert stored_state() == {}


# -- completion validators ---------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "status", "text"),
    [
        (
            {"MPUFLASK_MAX_PARTS": 1},
            400,
            "completeMultipartUpload: The object would have 2 parts; the limit is 1. (max_parts)",
        ),
        (
            {"MPUFLASK_MAX_OBJECT_SIZE": MIN_PART},
            413,
            f"completeMultipartUpload: The object would be {MIN_PART + 1} bytes; the limit is {MIN_PART}. (max_object_size)",
        ),
    ],
)
def test_completion_validators(
    make_app: Any, stored_state, settings, status, text
) -> None:
    flow = Flow(make_app(**settings).test_client())
    upload_id = flow.create()
    listed = [flow.part(upload_id, 1, b"a" * MIN_PART), flow.part(upload_id, 2, b"b")]
    before = stored_state()
    response = flow.complete_raw(upload_id, listed)
    assert (response.status_code, response.text) == (status, text)
    assert stored_state() == before
    assert flow.get().status_code == 404
    flow.complete(upload_id, listed[:1])


# -- configuration by dotted path ---------------------------------------------------


def test_hooks_from_configuration(make_app: Any, stored_state) -> None:
    app = make_app(
        MPUFLASK_AUTH_HOOKS="tests.test_hooks:header_identity",
        MPUFLASK_PART_VALIDATORS="tests.test_hooks:no_zero_parts",
        MPUFLASK_COMPLETE_VALIDATORS="tests.test_hooks:at_most_one_part",
    )
    client = app.test_client()
    assert client.post("/k?action=mpu-create").status_code == 401
    flow = AuthFlow(client, {"X-Who": "carol"})
    upload_id = flow.req("POST", "/k?action=mpu-create").json["uploadId"]
    response = flow.req(
        "PUT", f"/k?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1", data=b"0"
    )
    assert (response.status_code, response.text) == (
        400,
        "uploadPart: no zeros (no_zero_parts)",
    )
    base = f"/k?uploadId={upload_id}"
    parts = [
        flow.req(
            "PUT", f"{base}&action=mpu-uploadpart&partNumber={n}", data=b"a" * MIN_PART
        ).json
        for n in (1, 2)
    ]
    before = stored_state()
    refused = flow.req("POST", f"{base}&action=mpu-complete", json={"parts": parts})
    assert (refused.status_code, refused.text) == (
        400,
        "completeMultipartUpload: one part at most (at_most_one_part)",
    )
    assert stored_state() == before
    done = flow.req("POST", f"{base}&action=mpu-complete", json={"parts": parts[:1]})
    assert done.status_code == 200


def header_identity(req: RequestInfo) -> str | None:
    return req.headers.get("X-Who")


def no_zero_parts(part: PartInfo) -> Any:
    from mpuflask.validators import PartRefused

    class Check:
        def update(self, chunk: bytes) -> None:
            if chunk.startswith(b"0"):
                raise PartRefused("no zeros", "no_zero_parts")

        def finish(self) -> None:
            pass

    return Check()


def at_most_one_part(done: Any) -> None:
    from mpuflask.validators import CompleteRefused

    if len(done.parts) > 1:
        raise CompleteRefused("one part at most", "at_most_one_part")


# -- CORS ------------------------------------------------------------------------


@pytest.fixture
def cors_app(make_app: Any) -> Flask:
    return make_app(MPUFLASK_CORS_ORIGINS="https://app.example")


def test_preflight_from_allowed_origin(cors_app: Flask) -> None:
    response = cors_app.test_client().options(
        "/file.bin?action=mpu-uploadpart&uploadId=u&partNumber=1",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type, content-md5",
        },
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "PUT" in response.headers["Access-Control-Allow-Methods"]
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "content-md5" in allowed and "content-type" in allowed


def test_cross_origin_part_upload_can_read_its_etag(cors_app: Flask) -> None:
    flow = Flow(cors_app.test_client())
    upload_id = flow.create()
    response = flow.client.put(
        f"/file.bin?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1",
        data=b"x",
        headers={"Origin": "https://app.example"},
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "etag" in response.headers["Access-Control-Expose-Headers"].lower()
    assert response.headers["ETag"] == f'"{md5(b"x")}"'


def test_other_origins_get_no_grant(cors_app: Flask, make_app: Any) -> None:
    headers = {"Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"}
    response = cors_app.test_client().options(
        "/k?action=mpu-uploadpart", headers=headers
    )
    assert "Access-Control-Allow-Origin" not in response.headers
    default = make_app().test_client()
    response = default.options(
        "/k?action=mpu-uploadpart", headers={**headers, "Origin": "https://app.example"}
    )
    assert "Access-Control-Allow-Origin" not in response.headers


def test_preflight_needs_no_credentials(make_app: Any) -> None:
    app = make_app(
        MPUFLASK_CORS_ORIGINS="https://app.example", MPUFLASK_AUTH_TOKENS=TOKENS
    )
    response = app.test_client().options(
        "/k?action=mpu-create",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
        },
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    refused = app.test_client().post(
        "/k?action=mpu-create", headers={"Origin": "https://app.example"}
    )
    assert refused.status_code == 401
    # The refusal is readable by the page, so it can tell the user why.
    assert refused.headers["Access-Control-Allow-Origin"] == "https://app.example"
