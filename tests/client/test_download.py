"""Downloads: parallel ranges, If-Match, etag recomputed, atomic replace."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from mpuflask.client import Client
from mpuflask.client import ClientError
from mpuflask.client import ServerRefused
from mpuflask.client import VerificationFailed
from tests.client.conftest import PART
from tests.client.conftest import URL
from tests.client.conftest import write_file
from tests.client.wsgi_adapter import WsgiAdapter
from tests.conftest import MIN_PART

SIZE = 10 * PART + 123


@pytest.fixture
def uploaded(
    tmp_path: Path, mpu: Client, adapter: WsgiAdapter, upload_kwargs: dict[str, Any]
) -> bytes:
    path = tmp_path / "source.bin"
    data = write_file(path, SIZE)
    mpu.upload(path, URL, **upload_kwargs)
    adapter.sent.clear()
    return data


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".download"))


def test_parallel_ranges_verified(
    tmp_path: Path,
    mpu: Client,
    adapter: WsgiAdapter,
    uploaded: bytes,
    upload_kwargs: dict[str, Any],
) -> None:
    target = tmp_path / "out.bin"
    result = mpu.download(URL, target, **upload_kwargs)
    assert target.read_bytes() == uploaded
    assert result.verified and result.size == SIZE
    ranges = sorted(s.headers["Range"] for s in adapter.sent)
    assert "bytes=0-0" in ranges
    assert f"bytes=0-{PART - 1}" in ranges and f"bytes={10 * PART}-{SIZE - 1}" in ranges
    assert len(ranges) == 12  # the probe and one range per part
    etags = {
        s.headers.get("If-Match")
        for s in adapter.sent
        if s.headers["Range"] != "bytes=0-0"
    }
    assert etags == {f'"{result.etag}"'}
    assert leftovers(tmp_path) == []


def test_unknown_part_size_still_downloads_unverified(
    tmp_path: Path, mpu: Client, uploaded: bytes
) -> None:
    target = tmp_path / "out.bin"
    result = mpu.download(URL, target, min_part_size=MIN_PART)
    assert target.read_bytes() == uploaded
    assert not result.verified


def test_the_default_part_size_is_found_without_being_told(
    tmp_path: Path, mpu: Client
) -> None:
    path = tmp_path / "source.bin"
    data = write_file(path, 3 * 1024 * 1024 + 5)
    mpu.upload(path, URL, min_part_size=MIN_PART * 1024)  # 1 MiB parts by default
    result = mpu.download(URL, tmp_path / "out.bin", min_part_size=MIN_PART * 1024)
    assert result.verified
    assert (tmp_path / "out.bin").read_bytes() == data


def test_an_empty_object(tmp_path: Path, mpu: Client) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    mpu.upload(empty, URL)
    result = mpu.download(URL, tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == b""
    assert result.verified and result.size == 0


def test_a_server_without_ranges_sends_it_whole(
    app: Flask,
    tmp_path: Path,
    mpu: Client,
    adapter: WsgiAdapter,
    uploaded: bytes,
    upload_kwargs: dict[str, Any],
) -> None:
    """The original Worker ignores Range and If-Match: one stream, still verified."""
    inner = app.wsgi_app

    def no_ranges(environ: dict[str, Any], start_response: Any) -> Any:
        environ.pop("HTTP_RANGE", None)
        environ.pop("HTTP_IF_MATCH", None)
        return inner(environ, start_response)

    app.wsgi_app = no_ranges  # type: ignore[method-assign]
    result = mpu.download(URL, tmp_path / "out.bin", **upload_kwargs)
    assert (tmp_path / "out.bin").read_bytes() == uploaded
    assert result.verified
    assert len(adapter.sent) == 1


def test_an_object_replaced_mid_download_is_refused(
    app: Flask,
    tmp_path: Path,
    make_client: Callable[..., Client],
    uploaded: bytes,
    upload_kwargs: dict[str, Any],
) -> None:
    inner = app.wsgi_app
    replaced: list[bool] = []
    other = tmp_path / "other.bin"
    write_file(other, SIZE, seed=9)

    def replace_after_probe(environ: dict[str, Any], start_response: Any) -> Any:
        if (
            environ.get("HTTP_RANGE", "").startswith("bytes=0-")
            and environ["HTTP_RANGE"] != "bytes=0-0"
            and not replaced
        ):
            replaced.append(True)
            make_client(concurrency=1).upload(other, URL, **upload_kwargs)
        return inner(environ, start_response)

    app.wsgi_app = replace_after_probe  # type: ignore[method-assign]
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(ClientError, match="changed during the download"):
        make_client(concurrency=1).download(URL, target, **upload_kwargs)
    assert target.read_bytes() == b"old", "the old file stays until a download succeeds"
    assert leftovers(tmp_path) == []


def test_corrupted_bytes_fail_verification(
    app: Flask,
    tmp_path: Path,
    mpu: Client,
    uploaded: bytes,
    upload_kwargs: dict[str, Any],
) -> None:
    inner = app.wsgi_app

    def flip_a_byte(environ: dict[str, Any], start_response: Any) -> Any:
        body = b"".join(inner(environ, start_response))
        if environ.get("HTTP_RANGE") == f"bytes={PART}-{2 * PART - 1}":
            body = bytes([body[0] ^ 1]) + body[1:]
        return [body]

    app.wsgi_app = flip_a_byte  # type: ignore[method-assign]
    target = tmp_path / "out.bin"
    with pytest.raises(VerificationFailed, match="downloaded bytes have etag"):
        mpu.download(URL, target, **upload_kwargs)
    assert not target.exists()
    assert leftovers(tmp_path) == []


def test_a_missing_object(tmp_path: Path, mpu: Client) -> None:
    with pytest.raises(ServerRefused) as refused:
        mpu.download(URL, tmp_path / "out.bin")
    assert str(refused.value) == f"get {URL} answered 404: Object Not Found"
    assert not (tmp_path / "out.bin").exists()
    assert leftovers(tmp_path) == []


def test_a_dropped_range_is_fetched_again(
    tmp_path: Path,
    mpu: Client,
    adapter: WsgiAdapter,
    uploaded: bytes,
    upload_kwargs: dict[str, Any],
) -> None:
    dropped: list[str] = []

    def drop_once(request: Any) -> bool:
        wanted = request.headers.get("Range")
        if wanted == f"bytes={2 * PART}-{3 * PART - 1}" and not dropped:
            dropped.append(wanted)
            return True
        return False

    adapter.fail = drop_once
    result = mpu.download(URL, tmp_path / "out.bin", **upload_kwargs)
    assert result.verified and dropped
    assert (tmp_path / "out.bin").read_bytes() == uploaded


def test_token_on_download(
    make_app: Callable[..., Flask],
    make_client: Callable[..., Client],
    tmp_path: Path,
    upload_kwargs: dict[str, Any],
) -> None:
    from tests.client.wsgi_adapter import session_for

    app = make_app(MPUFLASK_AUTH_TOKENS="t0k")
    client = make_client(session=session_for(WsgiAdapter(app)), token="t0k")
    path = tmp_path / "source.bin"
    data = write_file(path, SIZE)
    client.upload(path, URL, **upload_kwargs)
    client.download(URL, tmp_path / "out.bin", **upload_kwargs)
    assert (tmp_path / "out.bin").read_bytes() == data


def test_the_file_gets_the_usual_permissions(
    tmp_path: Path, mpu: Client, uploaded: bytes, upload_kwargs: dict[str, Any]
) -> None:
    import os

    umask = os.umask(0o022)
    os.umask(umask)
    target = tmp_path / "out.bin"
    mpu.download(URL, target, **upload_kwargs)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
