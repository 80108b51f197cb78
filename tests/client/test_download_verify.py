"""What a download's etag check proves, and what it warns when it proves nothing.

A mismatch fails the download only when the cut is known (one part, or the
part size given); under the client's guessed default cut it only means the
object was cut otherwise (the AWS CLI's 8 MiB parts), so the file is kept
with a warning.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask

from mpuflask.client import Client
from mpuflask.client import VerificationFailed
from tests.client.conftest import URL
from tests.client.conftest import write_file
from tests.conftest import MIN_PART

MIB = 1024 * 1024
#: 1.5 MiB in 768 KiB parts: 2 parts, as the default guess (1 MiB parts with
#: the lowered minimum) also makes, but cut elsewhere.
SIZE = 3 * MIB // 2
OTHER_CUT = 768 * 1024
SMALL = ["--min-part-size", str(MIN_PART)]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".download"))


@pytest.fixture
def cut_otherwise(tmp_path: Path, mpu: Client) -> bytes:
    """An object uploaded (by another tool, say) in parts the client would not cut."""
    data = write_file(tmp_path / "source.bin", SIZE)
    mpu.upload(
        tmp_path / "source.bin", URL, part_size=OTHER_CUT, min_part_size=MIN_PART
    )
    return data


def flip_a_byte(app: Flask, at: int) -> None:
    """Answer every GET whose body holds object byte ``at`` with that byte flipped."""
    inner = app.wsgi_app

    def flip(environ: dict[str, Any], start_response: Any) -> Any:
        body = b"".join(inner(environ, start_response))
        first = int(environ.get("HTTP_RANGE", "bytes=0-").split("=")[1].split("-")[0])
        if first <= at < first + len(body) and len(body) > 1:
            i = at - first
            body = body[:i] + bytes([body[i] ^ 1]) + body[i + 1 :]
        return [body]

    app.wsgi_app = flip  # type: ignore[method-assign]


def test_another_cut_with_the_same_count_keeps_the_file_with_a_warning(
    tmp_path: Path, mpu: Client, cut_otherwise: bytes
) -> None:
    target = tmp_path / "out.bin"
    result = mpu.download(URL, target, min_part_size=MIN_PART)
    assert target.read_bytes() == cut_otherwise
    assert not result.verified
    assert result.warning == (
        f'etag "{result.etag}" not recomputed (parts of the default {MIB} bytes '
        "do not give it: the object was cut otherwise, or its bytes differ; give "
        "--part-size); length and etag were checked across ranges"
    )
    assert leftovers(tmp_path) == []


def test_the_cli_keeps_it_and_warns(
    tmp_path: Path, run_cli: Callable[..., Result], cut_otherwise: bytes
) -> None:
    target = tmp_path / "out.bin"
    result = run_cli("download", URL, target, *SMALL, "-q")
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == cut_otherwise
    assert result.stderr.startswith("warning: etag ")
    assert "not recomputed (parts of the default 1048576 bytes" in result.stderr
    assert result.stdout.startswith(f"downloaded {URL} to {target}: {SIZE} bytes")


def test_the_right_part_size_given_verifies_it(
    tmp_path: Path, mpu: Client, cut_otherwise: bytes
) -> None:
    result = mpu.download(
        URL, tmp_path / "out.bin", part_size=OTHER_CUT, min_part_size=MIN_PART
    )
    assert result.verified and result.warning is None


def test_a_wrong_part_size_given_is_an_error_and_keeps_the_old_file(
    tmp_path: Path, run_cli: Callable[..., Result], cut_otherwise: bytes
) -> None:
    """Told the cut, a mismatch is evidence: exit 1, the old file stays."""
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    result = run_cli("download", URL, target, "--part-size", str(MIB), *SMALL, "-q")
    assert result.exit_code == 1
    assert result.output.startswith("Error: downloaded bytes have etag ")
    assert result.output.count("\n") == 1
    assert target.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_corrupt_bytes_of_one_part_fail_without_a_part_size(
    app: Flask, tmp_path: Path, mpu: Client
) -> None:
    """One part: the etag is of the whole body, so the cut is known."""
    write_file(tmp_path / "source.bin", 3000)
    mpu.upload(tmp_path / "source.bin", URL, min_part_size=MIN_PART)
    flip_a_byte(app, 1500)
    with pytest.raises(VerificationFailed, match="^downloaded bytes have etag "):
        mpu.download(URL, tmp_path / "out.bin", min_part_size=MIN_PART)
    assert not (tmp_path / "out.bin").exists()
    assert leftovers(tmp_path) == []


def test_corrupt_bytes_under_the_guessed_cut_only_warn(
    app: Flask, tmp_path: Path, mpu: Client
) -> None:
    """The price of the rule: the guess cannot tell a bad byte from another cut."""
    write_file(tmp_path / "source.bin", SIZE)
    mpu.upload(tmp_path / "source.bin", URL, min_part_size=MIN_PART)
    flip_a_byte(app, MIB + 5)
    result = mpu.download(URL, tmp_path / "out.bin", min_part_size=MIN_PART)
    assert not result.verified
    assert result.warning is not None and "or its bytes differ" in result.warning


def test_no_etag_says_there_was_nothing_to_check(
    app: Flask, tmp_path: Path, run_cli: Callable[..., Result], mpu: Client
) -> None:
    data = write_file(tmp_path / "source.bin", SIZE)
    mpu.upload(tmp_path / "source.bin", URL, min_part_size=MIN_PART)
    inner = app.wsgi_app

    def no_etag(environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            kept = [(k, v) for k, v in headers if k.lower() != "etag"]
            return start_response(status, kept, *rest)

        return inner(environ, start)

    app.wsgi_app = no_etag  # type: ignore[method-assign]
    result = run_cli("download", URL, tmp_path / "out.bin", *SMALL, "-q")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out.bin").read_bytes() == data
    assert result.stderr == (
        "warning: the server sent no etag: there was nothing to check the bytes "
        "against, only their length\n"
    )
