"""CORS: preflights and grants for the configured origins only, no credentials
needed for a preflight, refusals readable by the page."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from .auth_support import TOKENS
from .conftest import Flow
from .oracle import md5


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


def test_an_origin_is_matched_exactly_ip_literals_too(make_app: Any) -> None:
    """flask-cors reads an origin with ``[`` in it as a regular expression:
    ``http://[::1]:8080`` matched no request from that origin, and matched
    ``http://1:8080`` and ``http://::8080``."""
    client = make_app(MPUFLASK_CORS_ORIGINS="http://[::1]:8080").test_client()
    for origin, granted in [
        ("http://[::1]:8080", True),
        ("HTTP://[::1]:8080", True),
        ("http://1:8080", False),
        ("http://::8080", False),
        ("http://[::1]:80800", False),
    ]:
        answer = client.get("/?action=health", headers={"Origin": origin})
        allowed = answer.headers.get("Access-Control-Allow-Origin")
        assert (allowed == origin) is granted, (origin, allowed)
