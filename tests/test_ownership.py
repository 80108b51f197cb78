"""Ownership: an upload belongs to the identity that created it."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from .auth_support import ALICE
from .auth_support import BOB
from .auth_support import TOKENS
from .auth_support import AuthFlow


@pytest.fixture
def token_app(make_app: Any) -> Flask:
    return make_app(MPUFLASK_AUTH_TOKENS=TOKENS)


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
