"""``-H/--header``: checked before anything is sent, then sent on every request.

The app here has the ``X-Api-Key`` auth hook of docs/hooks.md ("Registering
hooks"), so a request without the header is refused (401): every command
working at all shows the header went with each of its requests, and
``adapter.sent`` shows it on every one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask

from mpuflask.client import Client
from mpuflask.client.headers import BadHeader
from mpuflask.errors import Unauthorized
from tests.client.conftest import PART
from tests.client.conftest import URL
from tests.client.conftest import write_file
from tests.client.listing_wsgi import FakeListing
from tests.client.listing_wsgi import open_upload
from tests.client.listing_wsgi import stored
from tests.client.wsgi_adapter import BASE
from tests.client.wsgi_adapter import WsgiAdapter
from tests.client.wsgi_adapter import session_for
from tests.conftest import MIN_PART

KEY = "s3cret"
NOT_A_HEADER = (
    "a header must be written 'Name: value', like 'X-Api-Key: s3cret' (what was "
    "given is not shown: it may hold a secret)"
)
UNSENDABLE = (
    "holds a character no HTTP header can carry (a line break or another control "
    "character, or one beyond latin-1, like a curly quote)"
)
HEADER = ["-H", f"X-Api-Key: {KEY}"]
SIZES = ["--part-size", str(PART), "--min-part-size", str(MIN_PART)]


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """docs/hooks.md's decorator example: only ``X-Api-Key: s3cret`` may pass."""
    app = make_app()
    mpu = app.extensions["mpuflask"]

    @mpu.authenticate
    def api_key(req: Any) -> str:
        if req.headers.get("X-Api-Key") != KEY:
            raise Unauthorized("Unauthorized: unknown API key")
        return "my-app"

    return app


def every_request_had_the_key(adapter: WsgiAdapter) -> bool:
    assert adapter.sent, "no request was made"
    return all(sent.headers.get("X-Api-Key") == KEY for sent in adapter.sent)


def test_upload_and_download_send_the_header_on_every_request(
    tmp_path: Path, run_cli: Callable[..., Result], adapter: WsgiAdapter
) -> None:
    data = write_file(tmp_path / "f.bin", 5 * PART + 7)
    up = run_cli("upload", tmp_path / "f.bin", URL, *SIZES, *HEADER, "-q")
    assert up.exit_code == 0, up.output
    down = run_cli("download", URL, tmp_path / "back.bin", *SIZES, *HEADER, "-q")
    assert down.exit_code == 0, down.output
    assert (tmp_path / "back.bin").read_bytes() == data
    assert set(adapter.actions()) == {
        "mpu-create",
        "mpu-uploadpart",
        "mpu-complete",
        "get",
    }
    assert every_request_had_the_key(adapter)


def test_a_resumed_upload_sends_the_header_on_every_request(
    tmp_path: Path, run_cli: Callable[..., Result], adapter: WsgiAdapter
) -> None:
    write_file(tmp_path / "f.bin", 5 * PART)
    adapter.fail = lambda request: "partNumber=3" in (request.url or "")
    first = run_cli(
        "upload", tmp_path / "f.bin", URL, *SIZES, *HEADER, "-q", "--retries", "0"
    )
    assert first.exit_code == 1
    adapter.fail = lambda request: False
    second = run_cli("upload", tmp_path / "f.bin", URL, *SIZES, *HEADER, "-q")
    assert second.exit_code == 0, second.output
    assert "mpu-listparts" in adapter.actions()
    assert every_request_had_the_key(adapter)


def test_stdin_abort_rm_ls_and_uploads_send_the_header(
    app: Flask, run_cli: Callable[..., Result], adapter: WsgiAdapter
) -> None:
    app.wsgi_app = FakeListing(  # type: ignore[method-assign]
        app.wsgi_app, [stored("dir/file.bin")], [open_upload("dir/x", "U1")]
    )
    piped = run_cli("upload", "-", URL, *SIZES, *HEADER, "-q", input=b"x" * (PART + 1))
    assert piped.exit_code == 0, piped.output
    created = Client(headers={"X-Api-Key": KEY}, session=session_for(adapter))
    upload_id = created.transport.call(
        "POST", f"{BASE}dir/x", "mpu-create", lambda r: r.json()["uploadId"]
    )
    for args in (
        ["abort", f"{BASE}dir/x", "--upload-id", upload_id],
        ["rm", URL],
        ["ls", BASE],
        ["uploads", BASE],
    ):
        result = run_cli(*args, *HEADER)
        assert result.exit_code == 0, (args, result.output)
    assert {"delete", "mpu-abort", "list", "mpu-list"} <= set(adapter.actions())
    assert every_request_had_the_key(adapter)


def test_without_the_header_the_refusal_says_what_to_give(
    tmp_path: Path,
    run_cli: Callable[..., Result],
    adapter: WsgiAdapter,
    stored_state: Callable[[], dict[str, bytes]],
) -> None:
    write_file(tmp_path / "f.bin", 100)
    before = stored_state()
    result = run_cli("upload", tmp_path / "f.bin", URL, "-q")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: mpu-create {URL} answered 401: Unauthorized: unknown API key; "
        "give the credentials it expects: --token (or MPUFLASK_TOKEN) or "
        "-H 'Name: value'\n"
    )
    assert len(adapter.sent) == 1, "a 401 is not retried"
    assert stored_state() == before


def test_headers_from_a_file(
    tmp_path: Path, run_cli: Callable[..., Result], adapter: WsgiAdapter
) -> None:
    """``-H @FILE`` keeps the key out of ``ps``; comments and blanks are skipped."""
    (tmp_path / "headers").write_text(f"# for the api_key hook\n\nX-Api-Key: {KEY}\n")
    result = run_cli("rm", URL, "-H", f"@{tmp_path / 'headers'}")
    assert result.exit_code == 0, result.output
    assert every_request_had_the_key(adapter)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (["-H", "X-Api-Key"], NOT_A_HEADER),
        (["-H", ": v"], NOT_A_HEADER),
        # The secret is never quoted back, even with the = typed for a ':'.
        (["-H", "X-Api-Key=topsecret"], NOT_A_HEADER),
        (["-H", "X Api: v"], "'X Api' is not a valid header name"),
        (["-H", "X-A: 1\nX-B: 2"], f"the value of X-A {UNSENDABLE}"),
        # A 59-line UnicodeEncodeError traceback, before.
        (
            ["-H", "X-Api-Key: sec\N{EURO SIGN}ret"],
            f"the value of X-Api-Key {UNSENDABLE}",
        ),
        (
            [
                "-H",
                "X-Api-Key: \N{LEFT DOUBLE QUOTATION MARK}k\N{RIGHT DOUBLE QUOTATION MARK}",
            ],
            f"the value of X-Api-Key {UNSENDABLE}",
        ),
        (["-H", "X-A: 1", "-H", "x-a: 2"], "the header x-a is given twice"),
        (
            ["-H", "Content-Length: 3"],
            "Content-Length is set by the client for each request",
        ),
        (["-H", "Range: bytes=0-1"], "Range is set by the client for each request"),
        (
            ["-H", "Content-Type: text/plain"],
            "Content-Type is set per request; the object's: --content-type",
        ),
        (
            ["-H", "@/nonexistent/h"],
            "cannot read headers from /nonexistent/h: no such file or directory",
        ),
    ],
)
def test_a_bad_header_is_a_usage_error(
    run_cli: Callable[..., Result],
    adapter: WsgiAdapter,
    given: list[str],
    message: str,
) -> None:
    result = run_cli("rm", URL, *given)
    assert result.exit_code == 2
    assert result.output.endswith(
        f"\nError: Invalid value for '-H' / '--header': {message}\n"
    )
    assert adapter.sent == []


@pytest.mark.parametrize(
    "command", ["upload", "download", "abort", "rm", "ls", "uploads"]
)
def test_every_client_command_takes_headers(
    tmp_path: Path,
    run_cli: Callable[..., Result],
    adapter: WsgiAdapter,
    command: str,
) -> None:
    source = tmp_path / "f.bin"
    source.write_bytes(b"x")
    args = {
        "upload": [source, URL],
        "download": [URL, tmp_path / "out"],
        "abort": [URL, "--upload-id", "U"],
        "rm": [URL],
        "ls": [BASE],
        "uploads": [BASE],
    }[command]
    result = run_cli(command, *args, "-H", "X-Api-Key")
    assert result.exit_code == 2
    assert result.output.endswith(
        f"\nError: Invalid value for '-H' / '--header': {NOT_A_HEADER}\n"
    )
    assert adapter.sent == []
    assert "-H, --header 'NAME: VALUE'" in run_cli(command, "--help").output


def test_a_token_and_an_authorization_header_are_a_usage_error(
    run_cli: Callable[..., Result], adapter: WsgiAdapter
) -> None:
    result = run_cli("rm", URL, "--token", "t", "-H", "Authorization: Bearer u")
    assert result.exit_code == 2
    assert result.output.endswith(
        "\nError: give either --token (or MPUFLASK_TOKEN) or an Authorization "
        "header (-H), not both\n"
    )
    assert adapter.sent == []


def test_an_authorization_header_alone_is_sent(
    run_cli: Callable[..., Result], adapter: WsgiAdapter
) -> None:
    result = run_cli("rm", URL, "-H", "Authorization: Bearer u", *HEADER)
    assert result.exit_code == 0, result.output
    assert adapter.sent[0].headers["Authorization"] == "Bearer u"


@pytest.mark.parametrize(
    ("headers", "token", "message"),
    [
        ({"X Api": "v"}, None, "'X Api' is not a valid header name"),
        ({"X-A": "1", "x-a": "2"}, None, "the header x-a is given twice"),
        (
            {"authorization": "Bearer u"},
            "t",
            "give either a token or an Authorization header, not both",
        ),
    ],
)
def test_the_library_checks_headers_too(
    headers: dict[str, str], token: str | None, message: str
) -> None:
    with pytest.raises(BadHeader) as refused:
        Client(headers=headers, token=token)
    assert str(refused.value) == message
