"""Tools that make signed URLs: examples/signing_endpoint.py and ``mpuflask sign``."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from .signing_support import SECRET
from .signing_support import _path


@pytest.fixture
def signed_app(make_app: Any) -> Flask:
    return make_app(MPUFLASK_SIGNING_KEY=SECRET)


# -- examples/signing_endpoint.py ----------------------------------------------------


@pytest.fixture
def endpoint() -> Any:
    """The example endpoint's test client, logged in as alice."""
    from examples.signing_endpoint import create_app

    app = create_app(
        {
            "MPUFLASK_URL": "http://x/",
            "MPUFLASK_SIGNING_KEY": SECRET,
            "SIGNING_USERS": '{"alice": "wonderland"}',
        }
    )
    client = app.test_client()
    login = client.post("/login", data={"user": "alice", "password": "wonderland"})
    assert login.status_code == 302
    return client


def test_example_endpoint_signs_what_the_server_accepts(
    endpoint: Any, signed_app: Flask
) -> None:
    client = signed_app.test_client()

    def ask(**fields: Any) -> Any:
        return endpoint.post("/sign", json={"key": "alice/a b&c=%d", **fields})

    created = ask(method="POST", action="mpu-create")
    upload_id = client.post(_path(created.json["url"])).json["uploadId"]
    url = ask(
        method="PUT", action="mpu-uploadpart", uploadId=upload_id, partNumber=1
    ).json["url"]
    part = client.put(_path(url), data=b"hi").json
    url = ask(method="POST", action="mpu-complete", uploadId=upload_id).json["url"]
    assert client.post(_path(url), json={"parts": [part]}).status_code == 200
    url = ask(method="GET", action="get").json["url"]
    assert client.get(_path(url)).data == b"hi"


@pytest.mark.parametrize(
    ("fields", "status", "error"),
    [
        (
            {"key": "bob/x", "method": "POST", "action": "mpu-create"},
            403,
            "alice may only use keys under 'alice/'",
        ),
        (
            {"key": "alice/x", "method": "DELETE", "action": "delete"},
            403,
            "DELETE delete is not allowed here",
        ),
        (
            {
                "key": "alice/x",
                "method": "PUT",
                "action": "mpu-uploadpart",
                "uploadId": "u",
                "partNumber": True,
            },
            400,
            "partNumber must be an integer 1..10000",
        ),
    ],
)
def test_example_endpoint_refuses(
    endpoint: Any, fields: dict[str, Any], status: int, error: str
) -> None:
    response = endpoint.post("/sign", json=fields)
    assert (response.status_code, response.json) == (status, {"error": error})


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["h/k", "--secret", "s"],
            "'h/k' is not an http:// or https:// URL with a host",
        ),
        (
            ["ftp://h/k", "--secret", "s"],
            "'ftp://h/k' is not an http:// or https:// URL",
        ),
        (["http://[::1/k", "--secret", "s"], "'http://[::1/k' is not a URL"),
        (
            ["http://h/k", "--secret", ""],
            "--secret (MPUFLASK_SIGNING_KEY) is set but empty",
        ),
        # Signed the key a\ufffd, silently, before.
        (
            ["http://h/a%ff", "--secret", "s"],
            "the key of 'http://h/a%ff' is not UTF-8 once percent-decoded",
        ),
        # A password, or an earlier signature, is never quoted back.
        (
            ["http://bob:s3cretpw@h/k?X-Mpu-Signature=abc", "--secret", "s"],
            "'http://bob:***@h/k?...' has a ?query or #fragment",
        ),
        (
            ["https//bob:s3cretpw@h/k", "--secret", "s"],
            "'https//bob:***@h/k' is not an http:// or https:// URL with a host",
        ),
        # Signed the key 'report', while the URL named 'report?.pdf'.
        (
            ["http://h/report?.pdf", "--secret", "s"],
            "'http://h/report?...' has a ?query or #fragment, which is not part "
            "of a key: write ? and # in a key as %3F and %23",
        ),
        (
            ["http://h/notes#draft", "--secret", "s"],
            "'http://h/notes#draft' has a ?query or #fragment, which is not part "
            "of a key: write ? and # in a key as %3F and %23",
        ),
    ],
)
def test_sign_refuses_what_no_server_would_accept(args: list[str], error: str) -> None:
    """``mpuflask sign`` printed ``://k?...`` for a URL without a scheme, and a
    URL signed with an empty secret that every server refuses."""
    from click.testing import CliRunner

    from mpuflask.signing import sign_command

    result = CliRunner().invoke(
        sign_command, [*args, "--method", "GET", "--action", "get"]
    )
    assert result.exit_code == 2, result.output
    assert error in result.output
    assert "X-Mpu-Signature" not in result.output
    assert "s3cretpw" not in result.output
