"""Usage errors exit 2 with click's usage and one line saying what is wrong.

A URL without a scheme, a host or a key, a part size R2's rules refuse, a
folder that does not exist: each is caught before any request is sent.
Also: ``download URL DIR/`` names the file after the key.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote
from urllib.parse import urlsplit

import pytest
from click.testing import Result

from tests.client.conftest import PART
from tests.client.conftest import write_file
from tests.client.wsgi_adapter import BASE
from tests.client.wsgi_adapter import WsgiAdapter
from tests.conftest import MIN_PART

SMALL = ["--min-part-size", str(MIN_PART), "-q"]


def usage_error(result: Result, argument: str, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.output.endswith(f"\nError: Invalid value for {argument}: {message}\n")
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "127.0.0.1:8000/k",
            "'127.0.0.1:8000/k' has no scheme: try http://127.0.0.1:8000/k",
        ),
        (
            "localhost:8000/k",
            "'localhost:8000/k' has no scheme: try http://localhost:8000/k",
        ),
        ("host/k", "'host/k' has no scheme: try http://host/k"),
        (
            "ftp://host/k",
            "'ftp://host/k': the scheme 'ftp' is not supported, use http:// or https://",
        ),
        ("http:///k", "'http:///k' has no host: write it as http://host:port/key"),
        (
            "http://host:80x/k",
            "'http://host:80x/k' has a port that is not a number from 0 to 65535",
        ),
        (
            "http://host:8000/",
            "'http://host:8000/' names no object: add the key after the host, as in http://host:8000/path/file.bin",
        ),
        (
            "http://host:8000",
            "'http://host:8000' names no object: add the key after the host, as in http://host:8000/path/file.bin",
        ),
        # Not part of the key: the command would act on 'report' or 'notes'
        # while saying it acted on the URL as given.
        (
            "http://host:8000/report?.pdf",
            "'http://host:8000/report?...' has a ?query, which is not part of a key (the client adds its own): write ? in a key as %3F",
        ),
        (
            "http://host:8000/keep?partNumber=1",
            "'http://host:8000/keep?...' has a ?query, which is not part of a key (the client adds its own): write ? in a key as %3F",
        ),
        # A password, or a signature in a query, is never echoed back.
        (
            "http://u:s3cret@host:80x/k",
            "'http://u:***@host:80x/k' has a port that is not a number from 0 to 65535",
        ),
        (
            "http://host:8000/k?sig=s3cret&expires=1",
            "'http://host:8000/k?...' has a ?query, which is not part of a key (the client adds its own): write ? in a key as %3F",
        ),
        (
            "u:s3cret@host:8000/k",
            "'u:***@host:8000/k' has no scheme: try http://u:***@host:8000/k",
        ),
        (
            "https//u:s3cret@host:8000/k",
            "'https//u:***@host:8000/k' needs '://' after its scheme: try https://u:***@host:8000/k",
        ),
        # The advice was http://http:/host:8000/k.
        (
            "http:/host:8000/k",
            "'http:/host:8000/k' needs '://' after its scheme: try http://host:8000/k",
        ),
        (
            "http:host:8000/k",
            "'http:host:8000/k' needs '://' after its scheme: try http://host:8000/k",
        ),
        ("httpbin.org/k", "'httpbin.org/k' has no scheme: try http://httpbin.org/k"),
        (
            "http://u:s3cret@host:8000/",
            "'http://u:***@host:8000/' names no object: add the key after the host, as in http://u:***@host:8000/path/file.bin",
        ),
        (
            "http://host:8000/notes#draft",
            "'http://host:8000/notes#draft' has a #fragment, which is never sent: write # in a key as %23",
        ),
    ],
)
@pytest.mark.parametrize("command", ["upload", "download", "abort", "rm"])
def test_a_bad_object_url(
    tmp_path: Path,
    run_cli: Callable[..., Result],
    adapter: WsgiAdapter,
    command: str,
    url: str,
    message: str,
) -> None:
    source = tmp_path / "f.bin"
    source.write_bytes(b"x")
    args = {
        "upload": [source, url],
        "download": [url, tmp_path / "out.bin"],
        "abort": [url, "--upload-id", "U"],
        "rm": [url],
    }[command]
    argument = "'URL...'" if command == "rm" else "'URL'"
    usage_error(run_cli(command, *args), argument, message)
    assert adapter.sent == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "localhost:8000/",
            "'localhost:8000/' has no scheme: try http://localhost:8000/",
        ),
        (
            "http://host:8000/photos?x",
            "'http://host:8000/photos?...' has a ?query, which is not part of a key (the client adds its own): write ? in a key as %3F",
        ),
        (
            "http://host:8000/photos#2026",
            "'http://host:8000/photos#2026' has a #fragment, which is never sent: write # in a key as %23",
        ),
    ],
)
@pytest.mark.parametrize("command", ["ls", "uploads"])
def test_a_bad_listing_url(
    run_cli: Callable[..., Result],
    adapter: WsgiAdapter,
    command: str,
    url: str,
    message: str,
) -> None:
    usage_error(run_cli(command, url), "'URL'", message)
    assert adapter.sent == []


def test_a_key_with_question_mark_and_hash_goes_as_written(
    tmp_path: Path, run_cli: Callable[..., Result], adapter: WsgiAdapter
) -> None:
    """%3F and %23 are the key's own ? and #."""
    source = tmp_path / "f.bin"
    write_file(source, 10)
    result = run_cli("upload", source, f"{BASE}report%3F%23draft.pdf", *SMALL)
    assert result.exit_code == 0, result.output
    keys = {unquote(urlsplit(sent.url).path) for sent in adapter.sent}
    assert keys == {"/report?#draft.pdf"}
    assert [sent.action for sent in adapter.sent] == [
        "mpu-create",
        "mpu-uploadpart",
        "mpu-complete",
    ]


@pytest.mark.parametrize(
    ("written", "key", "sent"),
    [
        ("a/../b", "a/../b", "/a/%2E%2E/b"),
        ("./c/.", "./c/.", "/%2E/c/%2E"),
        ("d/%2E%2E", "d/..", "/d/%2E%2E"),
    ],
)
def test_a_key_with_dot_segments_goes_as_written(
    tmp_path: Path,
    run_cli: Callable[..., Result],
    adapter: WsgiAdapter,
    written: str,
    key: str,
    sent: str,
) -> None:
    """A ``.`` or ``..`` segment is the key's own: requests and urllib3 would
    drop it (``a/../b`` sent as ``/b``), so it goes percent-encoded."""
    source = tmp_path / "f.bin"
    write_file(source, 10)
    result = run_cli("upload", source, f"{BASE}{written}", *SMALL)
    assert result.exit_code == 0, result.output
    assert {urlsplit(s.url).path for s in adapter.sent} == {sent}
    assert adapter.client.get(f"/{key}?action=get").status_code == 200


def test_rm_of_a_dot_segment_key_leaves_the_other_key_alone(
    tmp_path: Path, run_cli: Callable[..., Result], adapter: WsgiAdapter
) -> None:
    """``rm http://h/a/../b`` deletes the key ``a/../b``, never ``b``."""
    source = tmp_path / "f.bin"
    data = write_file(source, 10)
    for url in (f"{BASE}b", f"{BASE}a/../b"):
        assert run_cli("upload", source, url, *SMALL).exit_code == 0
    result = run_cli("rm", f"{BASE}a/../b")
    assert result.exit_code == 0, result.output
    assert adapter.client.get("/a/../b?action=get").status_code == 404
    kept = adapter.client.get("/b?action=get")
    assert (kept.status_code, kept.data) == (200, data)


def test_a_part_size_under_the_minimum(
    tmp_path: Path, run_cli: Callable[..., Result], adapter: WsgiAdapter
) -> None:
    write_file(tmp_path / "f.bin", 3 * MIN_PART)
    half = str(MIN_PART // 2)
    usage_error(
        run_cli("upload", tmp_path / "f.bin", f"{BASE}k", "--part-size", half, *SMALL),
        "'--part-size'",
        f"part size {half} is under the minimum of {MIN_PART} bytes (only the last "
        "part may be smaller)",
    )
    usage_error(
        run_cli("upload", "-", f"{BASE}k", "--part-size", half, *SMALL, input=b"x"),
        "'--part-size'",
        f"part size {half} is under the minimum of {MIN_PART} bytes",
    )
    assert adapter.sent == []


def test_too_many_parts(
    tmp_path: Path, run_cli: Callable[..., Result], adapter: WsgiAdapter
) -> None:
    source = tmp_path / "sparse.bin"
    with source.open("wb") as out:
        out.truncate(10_001 * MIN_PART)
    usage_error(
        run_cli("upload", source, f"{BASE}k", "--part-size", str(MIN_PART), *SMALL),
        "'--part-size'",
        f"part size {MIN_PART} cuts {10_001 * MIN_PART} bytes into 10001 parts; at "
        f"most 10000 are allowed: use at least {MIN_PART + 1} bytes",
    )
    assert adapter.sent == []


def test_a_missing_file_and_a_folder_to_upload(
    tmp_path: Path, run_cli: Callable[..., Result]
) -> None:
    usage_error(
        run_cli("upload", tmp_path / "nope", f"{BASE}k"),
        "'FILE'",
        f"File '{tmp_path / 'nope'}' does not exist.",
    )
    usage_error(
        run_cli("upload", tmp_path, f"{BASE}k"),
        "'FILE'",
        f"File '{tmp_path}' is a directory.",
    )


@pytest.fixture
def uploaded(tmp_path: Path, run_cli: Callable[..., Result]) -> bytes:
    """An object under the key ``a/b c.bin``."""
    data = write_file(tmp_path / "src.bin", 2 * PART + 1)
    result = run_cli(
        "upload",
        tmp_path / "src.bin",
        f"{BASE}a/b%20c.bin",
        "--part-size",
        str(PART),
        *SMALL,
    )
    assert result.exit_code == 0, result.output
    return data


@pytest.mark.parametrize("slash", ["", "/"])
def test_download_into_an_existing_folder_keeps_the_key_name(
    tmp_path: Path, run_cli: Callable[..., Result], uploaded: bytes, slash: str
) -> None:
    folder = tmp_path / "into"
    folder.mkdir()
    result = run_cli("download", f"{BASE}a/b%20c.bin", f"{folder}{slash}", *SMALL)
    assert result.exit_code == 0, result.output
    assert (folder / "b c.bin").read_bytes() == uploaded
    assert sorted(p.name for p in folder.iterdir()) == ["b c.bin"]
    assert f" to {folder / 'b c.bin'}: " in result.output


def test_download_into_the_current_folder(
    tmp_path: Path,
    run_cli: Callable[..., Result],
    uploaded: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_cli("download", f"{BASE}a%2Fb%20c.bin", ".", *SMALL)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "b c.bin").read_bytes() == uploaded


def test_download_into_a_folder_that_does_not_exist(
    tmp_path: Path, run_cli: Callable[..., Result], adapter: WsgiAdapter
) -> None:
    usage_error(
        run_cli("download", f"{BASE}a/b.bin", f"{tmp_path}/new/"),
        "'FILE'",
        f"the folder '{tmp_path}/new/' does not exist",
    )
    usage_error(
        run_cli("download", f"{BASE}a/b.bin", tmp_path / "new" / "b.bin"),
        "'FILE'",
        f"the folder '{tmp_path / 'new'}' does not exist",
    )
    assert adapter.sent == []
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("key", ["a/", "a/..", "a/."])
def test_download_into_a_folder_needs_a_file_name_in_the_key(
    tmp_path: Path, run_cli: Callable[..., Result], adapter: WsgiAdapter, key: str
) -> None:
    usage_error(
        run_cli("download", f"{BASE}{key}", f"{tmp_path}/"),
        "'FILE'",
        f"the key of {BASE}{key} does not end in a usable file name: give the "
        "file to write, not a folder",
    )
    assert adapter.sent == []
