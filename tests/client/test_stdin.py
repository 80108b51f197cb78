"""``upload - URL`` and ``Client.upload_stream``: a stream of unknown size, in parts.

Parts are cut as the stream is read; at most ``concurrency`` of them are
held in memory (the next is read only when one finishes); a failure aborts
the upload, since a stream cannot be read again to resume.
"""

from __future__ import annotations

import io
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask

from mpuflask.client import Client
from mpuflask.client import ClientError
from mpuflask.client import ServerRefused
from mpuflask.client.stream import upload_stream
from tests.client.conftest import PART
from tests.client.conftest import URL
from tests.client.middleware import RefusePart
from tests.client.wsgi_adapter import WsgiAdapter
from tests.conftest import MIN_PART
from tests.oracle import multipart_etag

SIZES = {"part_size": PART, "min_part_size": MIN_PART}
CLI_SIZES = ["--part-size", str(PART), "--min-part-size", str(MIN_PART)]


class Pipe(io.RawIOBase):
    """A pipe-like stream: ``read(n)`` gives at most ``step`` bytes at a time."""

    def __init__(self, data: bytes, step: int = 700) -> None:
        self.data = data
        self.offset = 0
        self.step = step

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = self.step if size < 0 else min(size, self.step)
        piece = self.data[self.offset : self.offset + size]
        self.offset += len(piece)
        return piece


def stored_bytes(app: Flask, url: str = URL) -> bytes:
    answer = app.test_client().get(url.replace("http://testserver", "") + "?action=get")
    assert answer.status_code == 200, answer.text
    return answer.get_data()


def wait_for(probe: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.mark.parametrize(
    "size", [0, 1, PART - 1, PART, 2 * PART, 3 * PART + 5], ids=lambda s: f"{s}B"
)
def test_a_stream_is_stored_whole(app: Flask, mpu: Client, size: int) -> None:
    data = random.Random(size).randbytes(size)
    result = mpu.upload_stream(Pipe(data), URL, **SIZES)
    pieces = [data[i : i + PART] for i in range(0, size, PART)]
    assert stored_bytes(app) == data
    assert (result.size, result.parts, result.part_size) == (size, len(pieces), PART)
    assert result.etag == multipart_etag(pieces)
    assert result.verified


def test_at_most_concurrency_parts_are_read_ahead(
    app: Flask, make_client: Callable[..., Client], adapter: WsgiAdapter
) -> None:
    """While 3 parts are held by the server, the 4th is not read from the stream."""
    gate, held, lock = threading.Event(), [], threading.Lock()

    def hold_parts(request: Any) -> bool:
        if "mpu-uploadpart" in (request.url or ""):
            with lock:
                held.append(request.url)
            assert gate.wait(120), "the test never opened the gate"
        return False

    adapter.fail = hold_parts
    data = random.Random(1).randbytes(20 * PART)
    stream = Pipe(data, step=PART)
    results: list[Any] = []
    worker = threading.Thread(
        target=lambda: results.append(
            make_client(concurrency=3).upload_stream(stream, URL, **SIZES)
        )
    )
    worker.start()
    try:
        wait_for(lambda: len(held) == 3, "3 parts in flight")
        assert stream.offset == 3 * PART, "no chunk is read while 3 parts are held"
    finally:
        gate.set()
        worker.join(120)
    assert results and results[0].parts == 20
    assert stored_bytes(app) == data


def test_a_failed_try_is_sent_again_from_memory(
    app: Flask, mpu: Client, adapter: WsgiAdapter
) -> None:
    failures = iter([True])

    def once(request: Any) -> bool:
        return "partNumber=2" in (request.url or "") and next(failures, False)

    adapter.fail = once
    data = random.Random(2).randbytes(3 * PART)
    mpu.upload_stream(Pipe(data), URL, **SIZES)
    assert stored_bytes(app) == data
    assert sorted(adapter.parts_sent()) == [1, 2, 3]


def test_a_refused_part_aborts_the_upload(
    app: Flask,
    mpu: Client,
    adapter: WsgiAdapter,
    stored_state: Callable[[], dict[str, bytes]],
) -> None:
    before = stored_state()
    app.wsgi_app = RefusePart(app.wsgi_app, 2)  # type: ignore[method-assign]
    with pytest.raises(ServerRefused) as refused:
        mpu.upload_stream(Pipe(b"x" * 5 * PART), URL, **SIZES)
    assert refused.value.text == RefusePart.TEXT
    assert adapter.actions()[-1] == "mpu-abort"
    assert "mpu-complete" not in adapter.actions()
    assert stored_state() == before, "no part or upload is left behind"


def test_ctrl_c_aborts_the_upload(
    mpu: Client, adapter: WsgiAdapter, stored_state: Callable[[], dict[str, bytes]]
) -> None:
    before = stored_state()

    class Interrupted(Pipe):
        def read(self, size: int = -1) -> bytes:
            if self.offset >= 2 * PART:
                raise KeyboardInterrupt
            return super().read(size)

    with pytest.raises(KeyboardInterrupt):
        mpu.upload_stream(Interrupted(b"x" * 5 * PART, step=PART), URL, **SIZES)
    assert "mpu-abort" in adapter.actions()
    # Ctrl-C does not wait for parts in flight: they finish (refused) on their own.
    wait_for(
        lambda: not any(t.name.startswith("mpu-part") for t in threading.enumerate()),
        "the parts in flight",
    )
    assert stored_state() == before


def test_a_stream_over_the_part_limit_is_refused_and_aborted(
    mpu: Client, adapter: WsgiAdapter
) -> None:
    with pytest.raises(ClientError) as refused:
        upload_stream(
            mpu.transport, Pipe(b"x" * (2 * PART + 1)), URL, max_parts=2, **SIZES
        )
    assert str(refused.value) == (
        f"the stream is longer than 2 parts of {PART} bytes: give a bigger part size"
    )
    assert adapter.actions()[-1] == "mpu-abort"


def test_the_default_part_size_is_the_one_a_download_verifies(
    tmp_path: Path, mpu: Client
) -> None:
    """The client's own cut for files: 5 MiB up to ~48 GiB, here 1 MiB (the
    minimum is lowered to 1 KiB, and the cut is whole MiBs)."""
    data = random.Random(3).randbytes(2 * 1024 * 1024 + 1)
    result = mpu.upload_stream(Pipe(data, step=65536), URL, min_part_size=MIN_PART)
    assert (result.part_size, result.parts) == (1024 * 1024, 3)
    got = mpu.download(URL, tmp_path / "back.bin", min_part_size=MIN_PART)
    assert got.verified and (tmp_path / "back.bin").read_bytes() == data


def test_cli_reads_standard_input(app: Flask, run_cli: Callable[..., Result]) -> None:
    data = random.Random(4).randbytes(2 * PART + 3)
    result = run_cli("upload", "-", URL, *CLI_SIZES, input=data)
    assert result.exit_code == 0, result.output
    etag = multipart_etag([data[:PART], data[PART : 2 * PART], data[2 * PART :]])
    lines = result.output.splitlines()
    assert lines[0].endswith("a stream cannot be resumed (if it stops, start over)")
    assert lines[1].startswith(f"upload stdin: {(2 * PART + 3) / 1024:.1f} KiB (")
    assert lines[2] == (
        f'uploaded standard input to {URL}: etag "{etag}" (verified), '
        f"{2 * PART + 3} bytes in 3 parts of {PART} bytes"
    )
    assert stored_bytes(app) == data


def test_cli_empty_standard_input_is_an_empty_object(
    app: Flask, run_cli: Callable[..., Result]
) -> None:
    result = run_cli("upload", "-", URL, *CLI_SIZES, "-q", input=b"")
    assert result.exit_code == 0, result.output
    assert "0 bytes in 0 parts" in result.output
    assert stored_bytes(app) == b""


def test_cli_failure_says_standard_input_cannot_resume(
    app: Flask, run_cli: Callable[..., Result], adapter: WsgiAdapter
) -> None:
    app.wsgi_app = RefusePart(app.wsgi_app, 1)  # type: ignore[method-assign]
    result = run_cli("upload", "-", URL, *CLI_SIZES, "-q", input=b"x" * 3 * PART)
    assert result.exit_code == 1
    assert result.output == (
        f"Error: mpu-uploadpart {URL} answered 400: {RefusePart.TEXT}; standard "
        "input cannot be resumed: the upload was aborted, run the command again "
        "from the start\n"
    )
    assert adapter.actions()[-1] == "mpu-abort"


def test_cli_reads_a_named_pipe_as_a_stream(
    app: Flask, run_cli: Callable[..., Result], tmp_path: Path
) -> None:
    """A FIFO's size is 0: read as a file, it replaced the object with nothing."""
    data = random.Random(5).randbytes(PART + 7)
    assert run_cli("upload", "-", URL, *CLI_SIZES, "-q", input=b"old").exit_code == 0
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def write() -> None:
        with fifo.open("wb") as pipe:
            pipe.write(data)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    result = run_cli("upload", fifo, URL, *CLI_SIZES)
    writer.join(timeout=60)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        f'uploaded {fifo} to {URL}: etag "{multipart_etag([data[:PART], data[PART:]])}" '
        f"(verified), {PART + 7} bytes in 2 parts of {PART} bytes"
    )
    assert stored_bytes(app) == data


def test_the_library_refuses_a_pipe_as_a_file(
    app: Flask, mpu: Client, adapter: WsgiAdapter, tmp_path: Path
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ClientError) as refused:
        mpu.upload(fifo, URL)
    assert str(refused.value) == (
        f"{fifo} is not a regular file (a pipe or a device): read it with "
        "upload_stream, as it comes"
    )
    assert adapter.sent == []
