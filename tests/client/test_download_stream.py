"""Downloads as one stream, in order: to standard output, a FIFO, a device.

``download URL -`` writes the object to standard output (every other line
goes to stderr), as ``download URL FIFO`` and ``download URL /dev/null`` do:
one GET of ``bytes=0-``, resumed from the first byte not yet written when the
connection drops (with If-Match, so the rest is the same object's), the etag
checked after the bytes went out. A disk (a block device) is refused.
"""

from __future__ import annotations

import io
import os
import stat
import threading
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3
from click.testing import Result
from flask import Flask

from mpuflask.client import Client
from mpuflask.client import ClientError
from mpuflask.client import VerificationFailed
from tests.client.conftest import PART
from tests.client.conftest import URL
from tests.client.conftest import write_file
from tests.client.wsgi_adapter import WsgiAdapter
from tests.conftest import MIN_PART

SIZE = 5 * PART + 77
SIZES = ["--part-size", str(PART), "--min-part-size", str(MIN_PART), "-q"]
SHOWN = URL  # no password, no query: shown as it is


@pytest.fixture
def uploaded(
    tmp_path: Path, mpu: Client, adapter: WsgiAdapter, upload_kwargs: dict[str, Any]
) -> bytes:
    path = tmp_path / "source.bin"
    data = write_file(path, SIZE)
    mpu.upload(path, URL, **upload_kwargs)
    path.unlink()
    adapter.sent.clear()
    return data


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder: a stream download must leave nothing in it."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def gets(adapter: WsgiAdapter) -> list[tuple[str | None, str | None, int | None]]:
    """(Range, If-Match, status) of each GET sent."""
    return [
        (s.headers.get("Range"), s.headers.get("If-Match"), s.status)
        for s in adapter.sent
        if s.method == "GET"
    ]


def test_dash_writes_the_object_to_standard_output(
    run_cli: Callable[..., Result], adapter: WsgiAdapter, uploaded: bytes, work: Path
) -> None:
    result = run_cli("download", URL, "-", *SIZES)
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == uploaded
    assert gets(adapter) == [("bytes=0-", None, 206)]  # one GET, the whole
    assert result.stderr.startswith(
        f"downloaded {SHOWN} to standard output: {SIZE} bytes, etag "
    )
    assert "warning" not in result.stderr
    assert list(work.iterdir()) == []


def test_a_dropped_connection_resumes_where_the_bytes_stopped(
    mpu: Client, adapter: WsgiAdapter, uploaded: bytes
) -> None:
    cut_twice(adapter, at=[PART + 5, 2 * PART])
    out = io.BytesIO()
    result = mpu.download_stream(URL, out, part_size=PART, min_part_size=MIN_PART)
    assert out.getvalue() == uploaded
    assert result.verified and result.size == SIZE
    etag = f'"{result.etag}"'
    assert gets(adapter) == [
        ("bytes=0-", None, 206),
        (f"bytes={PART + 5}-", etag, 206),
        (f"bytes={3 * PART + 5}-", etag, 206),
    ]


def test_an_object_replaced_before_the_resume_fails_naming_what_went_out(
    app: Flask,
    make_client: Callable[..., Client],
    adapter: WsgiAdapter,
    uploaded: bytes,
    tmp_path: Path,
    upload_kwargs: dict[str, Any],
) -> None:
    other = tmp_path / "other.bin"
    write_file(other, SIZE, seed=5)
    cut_twice(adapter, at=[PART])
    inner = app.wsgi_app

    def replace_before_resume(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("HTTP_RANGE") == f"bytes={PART}-" and not other_sent:
            other_sent.append(True)
            make_client(concurrency=1).upload(other, URL, **upload_kwargs)
        return inner(environ, start_response)

    other_sent: list[bool] = []
    app.wsgi_app = replace_before_resume  # type: ignore[method-assign]
    out = io.BytesIO()
    with pytest.raises(ClientError) as failed:
        make_client().download_stream(URL, out, **upload_kwargs)
    assert str(failed.value).startswith(f"{SHOWN} changed during the download (its ")
    assert str(failed.value).endswith(f"after {PART} bytes were written")
    assert out.getvalue() == uploaded[:PART]


def test_a_server_without_ranges_is_read_past_what_went_out(
    app: Flask, mpu: Client, adapter: WsgiAdapter, uploaded: bytes
) -> None:
    """The original Worker ignores Range and If-Match: a resumed try gets the
    whole body again, and the bytes already written are read past."""
    inner = app.wsgi_app

    def no_ranges(environ: dict[str, Any], start_response: Any) -> Any:
        environ.pop("HTTP_RANGE", None)
        environ.pop("HTTP_IF_MATCH", None)
        return inner(environ, start_response)

    app.wsgi_app = no_ranges  # type: ignore[method-assign]
    cut_twice(adapter, at=[PART + 3])
    out = io.BytesIO()
    result = mpu.download_stream(URL, out, part_size=PART, min_part_size=MIN_PART)
    assert out.getvalue() == uploaded and result.verified
    assert [status for *_, status in gets(adapter)] == [200, 200]


def test_bytes_not_the_etag_s_fail_after_they_went_out(
    app: Flask, run_cli: Callable[..., Result], uploaded: bytes, work: Path
) -> None:
    inner = app.wsgi_app

    def flip_a_byte(environ: dict[str, Any], start_response: Any) -> Any:
        body = b"".join(inner(environ, start_response))
        return [body[:PART] + bytes([body[PART] ^ 1]) + body[PART + 1 :]]

    app.wsgi_app = flip_a_byte  # type: ignore[method-assign]
    result = run_cli("download", URL, "-", *SIZES)
    assert result.exit_code == 1
    assert len(result.stdout_bytes) == SIZE and result.stdout_bytes != uploaded
    assert result.stderr.startswith("Error: downloaded bytes have etag ")
    assert result.stderr.rstrip().endswith(
        "; what went out is not the whole object: discard it and run the command "
        "again; if it happens again, the network or server changes bytes"
    )
    assert list(work.iterdir()) == []


def test_an_empty_object(
    mpu: Client, adapter: WsgiAdapter, tmp_path: Path, upload_kwargs: dict[str, Any]
) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    mpu.upload(empty, URL, **upload_kwargs)
    adapter.sent.clear()
    out = io.BytesIO()
    result = mpu.download_stream(URL, out)
    assert out.getvalue() == b"" and result.size == 0 and result.verified
    assert gets(adapter)[-1][2] == 200  # (R2 may first answer 416 for bytes=0-)


def test_a_fifo_gets_the_bytes_in_order(
    run_cli: Callable[..., Result], uploaded: bytes, tmp_path: Path
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    result = run_cli("download", URL, fifo, *SIZES)
    reader.join(timeout=120)
    assert result.exit_code == 0, result.stderr
    assert got == [uploaded] and result.stdout_bytes == b""
    assert f"downloaded {SHOWN} to {fifo}: {SIZE} bytes" in result.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_a_device_is_written_not_replaced(
    run_cli: Callable[..., Result], uploaded: bytes, tmp_path: Path
) -> None:
    """``download URL /dev/null`` (through a link, too) writes into the
    device, which stays a device: it is never renamed over."""
    link = tmp_path / "out"
    link.symlink_to("/dev/null")
    for target in ("/dev/null", link):
        result = run_cli("download", URL, target, *SIZES)
        assert result.exit_code == 0, result.stderr
        assert f"to {target}: {SIZE} bytes" in result.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode) and link.is_symlink()


def test_a_disk_is_refused_before_any_request(
    run_cli: Callable[..., Result], adapter: WsgiAdapter
) -> None:
    disk = next(_block_devices(), None)
    if disk is None:
        pytest.skip("no block device to name")
    mode = disk.stat().st_mode
    result = run_cli("download", URL, disk, *SIZES)
    assert result.exit_code == 2
    assert (
        f"Error: Invalid value for 'FILE': '{disk}' is a block device (a disk): a "
        "download does not write disks; if that is what you mean: mpuflask "
        f"download URL - | dd of={disk}"
    ) in " ".join(result.stderr.split())
    assert adapter.sent == [] and disk.stat().st_mode == mode


def _block_devices() -> Iterator[Path]:
    for entry in sorted(Path("/dev").iterdir()):
        try:
            if stat.S_ISBLK(entry.stat().st_mode):
                yield entry
        except OSError:
            continue


def test_a_short_body_is_retried_and_a_long_one_refused(
    app: Flask, mpu: Client, adapter: WsgiAdapter, uploaded: bytes
) -> None:
    cut_twice(adapter, at=[10])
    out = io.BytesIO()
    mpu.download_stream(URL, out, part_size=PART, min_part_size=MIN_PART)
    assert out.getvalue() == uploaded
    inner = app.wsgi_app

    def one_more(environ: dict[str, Any], start_response: Any) -> Any:
        return [b"".join(inner(environ, start_response)) + b"!"]

    app.wsgi_app = one_more  # type: ignore[method-assign]
    out = io.BytesIO()
    with pytest.raises(ClientError, match=f"^{URL}: more bytes than announced$"):
        mpu.download_stream(URL, out)
    assert uploaded.startswith(out.getvalue())  # no byte beyond the announced


def test_verification_failure_is_a_verification_failed(
    app: Flask, mpu: Client, uploaded: bytes
) -> None:
    inner = app.wsgi_app

    def flip_last(environ: dict[str, Any], start_response: Any) -> Any:
        body = b"".join(inner(environ, start_response))
        return [body[:-1] + bytes([body[-1] ^ 1])]

    app.wsgi_app = flip_last  # type: ignore[method-assign]
    with pytest.raises(VerificationFailed, match="downloaded bytes have etag"):
        mpu.download_stream(URL, io.BytesIO(), part_size=PART, min_part_size=MIN_PART)


def cut_twice(adapter: WsgiAdapter, at: list[int]) -> None:
    """Make the next GETs' bodies break after ``at[0]``, then ``at[1]``, ...
    bytes, as a connection lost mid-body does."""
    cuts = list(at)
    send = adapter.send

    def cut(request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        response = send(request, **kwargs)
        if request.method == "GET" and cuts and response.status_code in (200, 206):
            response.raw = _Broken(response.raw.read(), cuts.pop(0))
        return response

    adapter.send = cut  # type: ignore[method-assign]


class _Broken(io.RawIOBase):
    """A body that breaks after ``cut`` bytes."""

    def __init__(self, data: bytes, cut: int) -> None:
        self.data, self.cut, self.at = data, cut, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.at >= self.cut:
            broken = urllib3.exceptions.ProtocolError("Connection broken")
            raise requests.exceptions.ChunkedEncodingError(broken)
        size = len(self.data) if size < 0 else size
        chunk = self.data[self.at : min(self.at + size, self.cut)]
        self.at += len(chunk)
        return chunk
