"""The seed Worker's routing texts, byte for byte (shared/spec, API table)."""

from __future__ import annotations

import pytest

from .conftest import Flow


@pytest.mark.parametrize(
    ("method", "url", "status", "text"),
    [
        ("GET", "/k", 400, "Missing action type"),
        ("POST", "/k", 400, "Missing action type"),
        ("PATCH", "/k", 400, "Missing action type"),
        ("POST", "/k?action=get", 400, "Unknown action get for POST"),
        ("PUT", "/k?action=mpu-create", 400, "Unknown action mpu-create for PUT"),
        ("GET", "/k?action=delete", 400, "Unknown action delete for GET"),
        ("DELETE", "/k?action=get", 400, "Unknown action get for DELETE"),
        ("GET", "/k?action=", 400, "Unknown action  for GET"),
        ("PUT", "/k?action=mpu-uploadpart", 400, "Missing partNumber or uploadId"),
        (
            "PUT",
            "/k?action=mpu-uploadpart&uploadId=u",
            400,
            "Missing partNumber or uploadId",
        ),
        (
            "PUT",
            "/k?action=mpu-uploadpart&partNumber=1",
            400,
            "Missing partNumber or uploadId",
        ),
        (
            "PUT",
            "/k?action=mpu-uploadpart&partNumber=1&uploadId=u",
            400,
            "Missing request body",
        ),
        ("POST", "/k?action=mpu-complete", 400, "Missing uploadId"),
        ("DELETE", "/k?action=mpu-abort", 400, "Missing uploadId"),
        ("GET", "/k?action=get", 404, "Object Not Found"),
        ("HEAD", "/k?action=get", 404, ""),
    ],
)
def test_seed_texts(client, stored_state, method, url, status, text) -> None:
    response = client.open(url, method=method)
    assert (response.status_code, response.text) == (status, text)
    assert stored_state() == {}


@pytest.mark.parametrize("method", ["PATCH", "OPTIONS", "TRACE"])
def test_other_methods_are_405_with_allow(client, method) -> None:
    response = client.open("/k?action=get", method=method)
    assert response.status_code == 405
    assert response.text == "Method Not Allowed"
    assert response.headers["Allow"] == "PUT, POST, GET, DELETE"


@pytest.mark.parametrize(
    "path",
    [
        "//lead",
        "trail/",
        "a//b",
        "./x",
        "../../etc/passwd",
        "a/../../b",
        "%2e%2e/x",
        "sp ace",
    ],
)
def test_any_path_is_a_key_and_never_redirects(flow: Flow, client, path) -> None:
    """Keys with //, trailing /, dots: stored and read back, no 308."""
    environ = {"PATH_INFO": "/" + path.replace("%2e", ".")}
    created = client.post("/?action=mpu-create", environ_overrides=environ)
    assert created.status_code == 200
    key = created.json["key"]
    assert key == environ["PATH_INFO"][1:]
    upload_id = created.json["uploadId"]
    part = client.put(
        f"/?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1",
        data=b"bytes",
        environ_overrides=environ,
    )
    assert part.status_code == 200
    done = client.post(
        f"/?action=mpu-complete&uploadId={upload_id}",
        json={"parts": [part.json]},
        environ_overrides=environ,
    )
    assert done.status_code == 200
    got = client.get("/?action=get", environ_overrides=environ)
    assert (got.status_code, got.data) == (200, b"bytes")


def test_key_is_percent_decoded(flow: Flow, client) -> None:
    upload_id = flow.create("a%2Fb%20c")
    response = client.post("/a%2Fb%20c?action=mpu-create")
    assert response.json["key"] == "a/b c"
    assert upload_id


def test_key_of_invalid_utf8_is_refused(client, stored_state) -> None:
    # A WSGI server puts the percent-decoded bytes in PATH_INFO as latin-1.
    response = client.post(
        "/?action=mpu-create", environ_overrides={"PATH_INFO": "/\xff"}
    )
    assert response.status_code == 400
    assert (
        response.text
        == "createMultipartUpload: The specified object name is not valid. (10020)"
    )
    assert stored_state() == {}


@pytest.mark.parametrize(("size", "ok"), [(1024, True), (1025, False)])
def test_key_length_limit_is_1024_bytes(client, stored_state, size, ok) -> None:
    key = "é" * (size // 2) + "x" * (size % 2)
    response = client.post(
        "/?action=mpu-create",
        environ_overrides={"PATH_INFO": "/" + key.encode().decode("latin-1")},
    )
    if ok:
        assert response.status_code == 200
        assert response.json["key"] == key
    else:
        assert response.status_code == 400
        assert response.text == (
            "createMultipartUpload: The specified object name is not valid. (10020)"
        )
        assert stored_state() == {}


@pytest.mark.parametrize("action", ["get", "delete"])
def test_empty_key_is_invalid(client, action) -> None:
    method = "GET" if action == "get" else "DELETE"
    response = client.open(f"/?action={action}", method=method)
    assert response.status_code == 400
    assert response.text == f"{action}: The specified object name is not valid. (10020)"
