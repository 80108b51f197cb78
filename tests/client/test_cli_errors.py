"""Failures are one line, ``Error: <what> <where>: <why>; <what to try>``, exit 1.

No traceback, no library text, no progress line for a transfer that never
started (a failed download used to print ``100% 0 B of 0 B`` first).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask

from tests.client.conftest import PART
from tests.client.conftest import URL
from tests.client.conftest import write_file
from tests.client.middleware import answer
from tests.client.middleware import drain
from tests.client.wsgi_adapter import BASE
from tests.client.wsgi_adapter import WsgiAdapter
from tests.conftest import MIN_PART

SIZES = ["--part-size", str(PART), "--min-part-size", str(MIN_PART)]
NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def refuse_all(app: Flask, status: str, text: str) -> None:
    def refuse(environ: dict[str, Any], start_response: Any) -> Any:
        drain(environ)
        return answer(start_response, status, text)

    app.wsgi_app = refuse  # type: ignore[method-assign]


def test_a_missing_object_prints_no_progress_and_leaves_nothing(
    tmp_path: Path, run_cli: Callable[..., Result]
) -> None:
    into = tmp_path / "into"
    into.mkdir()
    result = run_cli("download", URL, into / "out.bin")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: get {URL} answered 404: Object Not Found; no object has this "
        "key; mpuflask ls lists the keys stored\n"
    )
    assert list(into.iterdir()) == []


def test_a_proxy_error_page_is_shown_by_its_title(
    tmp_path: Path, app: Flask, run_cli: Callable[..., Result], adapter: WsgiAdapter
) -> None:
    refuse_all(app, "502 Bad Gateway", NGINX_502)
    write_file(tmp_path / "f.bin", 10)
    result = run_cli("upload", tmp_path / "f.bin", URL, "--retries", "1", "-q")
    assert result.exit_code == 1
    assert result.output == (
        f"mpu-create {URL} answered 502: 502 Bad Gateway; retrying in 0.0 s "
        "(try 2 of 2)\n"
        f"Error: mpu-create {URL} answered 502: 502 Bad Gateway (tried 2 times); "
        "the server is failing or busy; see its log, or run the same command "
        "again (it resumes) later\n"
    )
    assert len(adapter.sent) == 2


@pytest.mark.parametrize(
    ("status", "text", "advice"),
    [
        (
            "403 Forbidden",
            "createMultipartUpload: Forbidden: key outside 'alice/'",
            "the credentials given may not do this, or not on this key",
        ),
        (
            "413 Request Entity Too Large",
            "uploadPart: too big",
            "the server refuses requests this big: try a smaller --part-size",
        ),
        ("400 Bad Request", "createMultipartUpload: no (1)", None),
    ],
)
def test_a_refusal_says_what_to_try(
    tmp_path: Path,
    app: Flask,
    run_cli: Callable[..., Result],
    status: str,
    text: str,
    advice: str | None,
) -> None:
    refuse_all(app, status, text)
    write_file(tmp_path / "f.bin", 10)
    result = run_cli("upload", tmp_path / "f.bin", URL, "-q")
    assert result.exit_code == 1
    line = f"Error: mpu-create {URL} answered {status[:3]}: {text}"
    assert result.output == (f"{line}; {advice}\n" if advice else f"{line}\n")


def test_a_server_without_listing_is_named(
    app: Flask, run_cli: Callable[..., Result]
) -> None:
    """What an mpuflask from before listing (or the original Worker) answers."""
    refuse_all(app, "400 Bad Request", "Unknown action list for GET")
    result = run_cli("ls", BASE)
    assert result.exit_code == 1
    assert result.output == (
        f"Error: list {BASE} answered 400: Unknown action list for GET; this "
        "server does not have that action (an older mpuflask?)\n"
    )


def test_a_connection_lost_for_good_mid_upload(
    tmp_path: Path, run_cli: Callable[..., Result], adapter: WsgiAdapter
) -> None:
    write_file(tmp_path / "f.bin", 3 * PART)
    adapter.fail = lambda request: "partNumber=2" in (request.url or "")
    result = run_cli("upload", tmp_path / "f.bin", URL, *SIZES, "-q", "--retries", "0")
    assert result.exit_code == 1
    assert result.output.endswith(
        f"Error: mpu-uploadpart {URL}: the connection to testserver broke "
        "(connection reset by peer); check the network and the server's log; "
        "run the same command again (it resumes)\n"
    )
    assert result.output.count("\n") == 1


def test_a_local_file_error_is_plain(
    tmp_path: Path, run_cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OSError on a local file: its words and the file, no ``[Errno N]``."""
    import mpuflask.client.download as download

    def no_space(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device", str(tmp_path / "out.bin"))

    write_file(tmp_path / "f.bin", 10)
    assert run_cli("upload", tmp_path / "f.bin", URL, "-q").exit_code == 0
    monkeypatch.setattr(download.tempfile, "mkstemp", no_space)
    result = run_cli("download", URL, tmp_path / "out.bin", "-q")
    assert result.exit_code == 1
    assert result.output == f"Error: No space left on device: {tmp_path / 'out.bin'}\n"


def test_a_download_that_lost_its_connection_says_run_again(
    tmp_path: Path, run_cli: Callable[..., Result], adapter: WsgiAdapter
) -> None:
    """A download does not resume: the advice says so (no "it resumes")."""
    write_file(tmp_path / "f.bin", 3 * PART)
    assert run_cli("upload", tmp_path / "f.bin", URL, *SIZES, "-q").exit_code == 0
    adapter.fail = lambda request: (
        request.headers.get("Range") == f"bytes={PART}-{2 * PART - 1}"
    )
    result = run_cli(
        "download", URL, tmp_path / "out.bin", *SIZES, "-q", "--retries", "0"
    )
    assert result.exit_code == 1
    assert result.output == (
        f"Error: get {URL}: the connection to testserver broke (connection reset "
        "by peer); check the network and the server's log; run the same command "
        "again\n"
    )
    assert not (tmp_path / "out.bin").exists()


@pytest.mark.parametrize(
    ("create", "part", "why"),
    [
        ("[]", None, "TypeError: list indices must be integers or slices, not str"),
        ("null", None, "TypeError: 'NoneType' object is not subscriptable"),
        ('{"uploadId": 7}', None, "TypeError: uploadId is 7, not a string"),
        (
            "<html>busy</html>",
            None,
            "JSONDecodeError: Expecting value: line 1 column 1",
        ),
        ('{"uploadId": "u"}', "{}", "KeyError: 'etag'"),
    ],
)
def test_an_answer_of_the_wrong_shape_is_one_line(
    tmp_path: Path,
    app: Flask,
    run_cli: Callable[..., Result],
    create: str,
    part: str | None,
    why: str,
) -> None:
    """A server that said 200 with ``[]``, ``null`` or no ``etag`` made the
    upload command die with a KeyError or TypeError traceback."""

    def wrong(environ: dict[str, Any], start_response: Any) -> Any:
        drain(environ)
        text = create if "mpu-create" in environ["QUERY_STRING"] else part or ""
        return answer(start_response, "200 OK", text)

    app.wsgi_app = wrong  # type: ignore[method-assign]
    write_file(tmp_path / "f.bin", 10)
    result = run_cli("upload", tmp_path / "f.bin", URL, "-q", "--no-resume")
    assert result.exit_code == 1
    action = "mpu-create" if part is None else "mpu-uploadpart"
    assert result.output.startswith(
        f"Error: {action} {URL}: the answer is not what {action} answers ({why}"
    ), result.output
    assert result.output.endswith("); is this an mpuflask server?\n"), result.output
    assert result.output.count("\n") == 1
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://[::1/k", "Invalid IPv6 URL"),
        ("http://[zz]/k", "'zz' does not appear to be an IPv4 or IPv6 address"),
    ],
)
@pytest.mark.parametrize("command", ["upload", "download", "rm", "ls", "abort"])
def test_a_url_with_a_broken_host_is_one_line(
    tmp_path: Path, run_cli: Callable[..., Result], url: str, why: str, command: str
) -> None:
    write_file(tmp_path / "f.bin", 10)
    args = {
        "upload": [tmp_path / "f.bin", url],
        "download": [url, tmp_path / "out.bin"],
        "rm": [url],
        "ls": [url],
        "abort": [url, "some-upload-id"],
    }[command]
    result = run_cli(command, *args)
    assert result.exit_code == 2, result.output
    assert f"{url!r} is not a URL: {why}" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out.bin").exists()
