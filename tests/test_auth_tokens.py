"""The built-in bearer-token auth: every action refused without a valid token,
a token's actions and key prefix enforced, a failing auth hook failing closed.

Signed URLs are in test_signing*.py; tokens compared as digests, in
test_token_digests.py; who may touch an upload, in test_ownership.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from mpuflask.hooks import RequestInfo

from .auth_support import ALICE
from .auth_support import TOKENS
from .auth_support import AuthFlow
from .conftest import MIN_PART


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
            # Another scheme is not a bearer token: left to the other hooks,
            # and with none, no credentials at all.
            {"Authorization": "Basic dXNlcjpwdw=="},
            401,
            "Unauthorized: send 'Authorization: Bearer <token>' or use a signed URL",
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


def test_failing_auth_hook_fails_closed(make_app: Any, stored_state) -> None:
    app = make_app(PROPAGATE_EXCEPTIONS=False)

    @app.extensions["mpuflask"].authenticate
    def broken(req: RequestInfo) -> str:
        raise KeyError("oops")

    response = app.test_client().post("/k?action=mpu-create")
    assert response.status_code == 500
    assert stored_state() == {}


def test_another_authorization_scheme_is_left_to_the_other_auth_hooks(
    make_app: Any, stored_state
) -> None:
    """With tokens on, ``Authorization: Basic ...`` is not a bearer token
    presented wrong: the token check abstains and an app's own hook decides
    (a proxy doing Basic auth forwards that header; a browser sends it on
    every request to its site)."""
    app = make_app(MPUFLASK_AUTH_TOKENS=TOKENS)
    seen: list[str | None] = []

    @app.extensions["mpuflask"].authenticate
    def basic_auth(req: RequestInfo) -> str | None:
        header = req.headers.get("Authorization")
        seen.append(header)
        return "carol" if header == "Basic Y2Fyb2w6cHc=" else None

    client = app.test_client()
    created = client.post(
        "/carol.bin?action=mpu-create", headers={"Authorization": "Basic Y2Fyb2w6cHc="}
    )
    assert created.status_code == 200, created.text
    assert seen == ["Basic Y2Fyb2w6cHc="]
    before = stored_state()
    refused = client.post(
        "/k?action=mpu-create", headers={"Authorization": "Basic bWFsbG9yeTpwdw=="}
    )
    assert (refused.status_code, refused.text) == (
        401,
        "Unauthorized: send 'Authorization: Bearer <token>' or use a signed URL",
    )
    assert stored_state() == before
    # A bearer token presented wrong is still refused by the token check,
    # before any hook of the app's is asked.
    wrong = client.post("/k?action=mpu-create", headers={"Authorization": "Bearer no"})
    assert (wrong.status_code, wrong.text) == (
        401,
        "Unauthorized: invalid bearer token",
    )
    assert seen == ["Basic Y2Fyb2w6cHc=", "Basic bWFsbG9yeTpwdw=="]
