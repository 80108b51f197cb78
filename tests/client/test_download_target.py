"""Which file a download writes, and what it never replaces.

A symlink is written through (the file it names is replaced, the link
stays); a target that is not a regular file and takes no stream (a socket,
a folder) is a usage error before any request, and is left as it was. The
library's file download refuses FIFOs and devices too; the command line
streams into them (test_download_stream.py).
A name near the 255-byte limit still gets a temp file beside it.
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask

from mpuflask.client import Client
from mpuflask.client.target import BadTarget
from mpuflask.client.target import temp_prefix
from tests.client.conftest import PART
from tests.client.conftest import URL
from tests.client.conftest import write_file
from tests.client.wsgi_adapter import BASE
from tests.client.wsgi_adapter import WsgiAdapter
from tests.conftest import MIN_PART

SIZES = ["--part-size", str(PART), "--min-part-size", str(MIN_PART), "-q"]
ONLY_REGULAR = "not a regular file: a download only replaces regular files"


@pytest.fixture
def uploaded(
    tmp_path: Path, mpu: Client, adapter: WsgiAdapter, upload_kwargs: dict[str, Any]
) -> bytes:
    data = write_file(tmp_path / "source.bin", 3 * PART + 7)
    mpu.upload(tmp_path / "source.bin", URL, **upload_kwargs)
    adapter.sent.clear()
    return data


def usage_error(result: Result, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.output.endswith(f"\nError: Invalid value for 'FILE': {message}\n")
    assert "Traceback" not in result.output


def test_a_symlink_is_written_through(
    tmp_path: Path, run_cli: Callable[..., Result], uploaded: bytes
) -> None:
    """As ``curl -o`` does: the file it names gets the bytes, the link stays."""
    work = tmp_path / "work"
    work.mkdir()
    real = work / "real.bin"
    real.write_bytes(b"old")
    link = work / "link.bin"
    link.symlink_to(real)
    result = run_cli("download", URL, link, *SIZES)
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes() == uploaded
    assert sorted(p.name for p in work.iterdir()) == ["link.bin", "real.bin"]


def test_a_dangling_symlink_makes_the_file_it_names(
    tmp_path: Path, mpu: Client, uploaded: bytes, upload_kwargs: dict[str, Any]
) -> None:
    (tmp_path / "sub").mkdir()
    link = tmp_path / "link.bin"
    link.symlink_to("sub/new.bin")
    result = mpu.download(URL, link, **upload_kwargs)
    assert result.path == link and link.is_symlink()
    assert (tmp_path / "sub" / "new.bin").read_bytes() == uploaded


def test_a_symlink_into_a_missing_folder_is_refused(
    tmp_path: Path, run_cli: Callable[..., Result], adapter: WsgiAdapter
) -> None:
    link = tmp_path / "link.bin"
    link.symlink_to(tmp_path / "nowhere" / "x.bin")
    usage_error(
        run_cli("download", URL, link, *SIZES),
        f"'{link}' (a symbolic link) leads to '{tmp_path}/nowhere/x.bin', in a "
        "folder that does not exist",
    )
    assert adapter.sent == [] and link.is_symlink()


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


@pytest.fixture
def device(tmp_path: Path) -> Path:
    """A /dev/null of our own (root only), so a failing test breaks nothing."""
    path = tmp_path / "devnull"
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device needs root")
    return path


@pytest.fixture
def unix_socket(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX) as bound:
        bound.bind(str(path))
        yield path


@pytest.mark.parametrize(
    ("kind", "what"),
    [("unix_socket", "a socket")],
)
def test_a_special_file_is_refused_and_kept(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    run_cli: Callable[..., Result],
    adapter: WsgiAdapter,
    kind: str,
    what: str,
) -> None:
    path: Path = request.getfixturevalue(kind)
    mode = path.lstat().st_mode
    usage_error(
        run_cli("download", URL, path, *SIZES),
        f"'{path}' is {what}, {ONLY_REGULAR}",
    )
    assert adapter.sent == []
    assert path.lstat().st_mode == mode
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".download")]


@pytest.mark.parametrize(("kind", "what"), [("fifo", "a FIFO"), ("device", "a device")])
def test_the_library_refuses_a_fifo_or_a_device(
    request: pytest.FixtureRequest,
    mpu: Client,
    adapter: WsgiAdapter,
    kind: str,
    what: str,
) -> None:
    """Client.download replaces regular files only (Client.download_stream
    writes to the others)."""
    path: Path = request.getfixturevalue(kind)
    mode = path.lstat().st_mode
    with pytest.raises(BadTarget, match=f"is {what}.*, not a regular"):
        mpu.download(URL, path)
    assert adapter.sent == [] and path.lstat().st_mode == mode


def test_dot_slash_dash_is_a_file_named_dash(
    tmp_path: Path,
    run_cli: Callable[..., Result],
    uploaded: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_cli("download", URL, "./-", *SIZES)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "-").read_bytes() == uploaded


def test_a_folder_at_the_key_name_is_named_not_the_temp_file(
    tmp_path: Path, run_cli: Callable[..., Result], mpu: Client, adapter: WsgiAdapter
) -> None:
    """``download URL/d1 dd/`` with ``dd/d1`` a folder: a usage error naming it."""
    write_file(tmp_path / "source.bin", 10)
    mpu.upload(tmp_path / "source.bin", f"{BASE}d1")
    adapter.sent.clear()
    (tmp_path / "dd" / "d1").mkdir(parents=True)
    usage_error(
        run_cli("download", f"{BASE}d1", f"{tmp_path}/dd/", "-q"),
        f"'{tmp_path}/dd/d1' is a folder, {ONLY_REGULAR}",
    )
    assert adapter.sent == [] and list((tmp_path / "dd" / "d1").iterdir()) == []
    assert list((tmp_path / "dd").iterdir()) == [tmp_path / "dd" / "d1"]


def test_a_folder_made_at_the_target_meanwhile_is_named(
    app: Flask, tmp_path: Path, run_cli: Callable[..., Result], uploaded: bytes
) -> None:
    """The rename fails; the message names the target, not the temp file."""
    target = tmp_path / "out.bin"
    inner = app.wsgi_app

    def make_a_folder(environ: dict[str, Any], start_response: Any) -> Any:
        target.mkdir(exist_ok=True)
        return inner(environ, start_response)

    app.wsgi_app = make_a_folder  # type: ignore[method-assign]
    result = run_cli("download", URL, target, *SIZES)
    assert result.exit_code == 1
    assert result.output == f"Error: Is a directory: {target}\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".download")]


@pytest.mark.parametrize("length", [200, 236, 237, 250, 255])
def test_a_long_file_name_works(
    tmp_path: Path, run_cli: Callable[..., Result], uploaded: bytes, length: int
) -> None:
    target = tmp_path / ("n" * (length - 4) + ".bin")
    result = run_cli("download", URL, target, *SIZES)
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == uploaded


def test_a_long_name_s_temp_prefix_fits_and_differs(tmp_path: Path) -> None:
    """Cut names keep their start and differ by a hash of the whole name."""
    one, two = ("é" * 120 + "a.bin", "é" * 120 + "b.bin")
    prefixes = [temp_prefix(tmp_path / name) for name in (one, two)]
    assert prefixes[0] != prefixes[1]
    for prefix in prefixes:
        assert prefix.startswith(".éé") and prefix.endswith(".")
        assert len(os.fsencode(prefix)) + len("12345678.download") <= 255
    assert temp_prefix(tmp_path / "short.bin") == ".short.bin."
