"""The ``mpuflask`` command without a server: the group, options, missing deps."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mpuflask.cli import COMMANDS
from mpuflask.cli import main
from mpuflask.client.cli_commands import parse_size

#: Run the CLI in a Python where ``import requests`` fails (a server install).
WITHOUT_REQUESTS = (
    "import sys; sys.modules['requests'] = None; from mpuflask.cli import main; main()"
)


def test_the_group_lists_every_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    for name in ("upload", "download", "abort"):
        assert name in COMMANDS
        assert f"  {name} " in result.output


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1048576", 1048576),
        ("100MiB", 100 << 20),
        ("5M", 5 << 20),
        ("8MB", 8_000_000),
        ("64k", 65536),
        ("1GiB", 1 << 30),
    ],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(None, None, text) == size  # type: ignore[arg-type]


def test_a_bad_size_is_a_usage_error(tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"x")
    result = CliRunner().invoke(
        main, ["upload", str(source), "http://h/k", "--part-size", "5x"]
    )
    assert result.exit_code == 2
    assert "'5x' is not a size like 100MiB" in result.output


def test_without_requests_the_group_still_works() -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_REQUESTS, "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "upload" in result.stdout


def test_without_requests_a_client_command_says_what_to_install(tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"x")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            WITHOUT_REQUESTS,
            "upload",
            str(source),
            "http://127.0.0.1:9/k",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert (
        "the mpuflask client needs requests: pip install 'mpuflask[client]'"
        in result.stderr
    )


def test_without_requests_the_library_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['requests'] = None; from mpuflask.client import Client"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert (
        "ImportError: the mpuflask client needs requests: pip install 'mpuflask[client]'"
        in result.stderr
    )


def test_a_refused_connection_is_one_line_and_exit_1(tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"x")
    result = CliRunner().invoke(
        main,
        [
            "upload",
            str(source),
            "http://127.0.0.1:9/k",
            "--retries",
            "0",
            "-q",
            "--state-dir",
            str(tmp_path / "s"),
        ],
    )
    assert result.exit_code == 1
    assert result.output.startswith("Error: mpu-create: ")
    assert "Traceback" not in result.output


def test_size_options_take_units(tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"x")
    args = ["upload", str(source), "http://127.0.0.1:9/k", "--retries", "0", "-q"]
    sizes = ["--part-size", "64KiB", "--min-part-size", "64KiB"]
    result = CliRunner().invoke(main, [*args, *sizes, "--state-dir", str(tmp_path)])
    assert result.exit_code == 1, result.output  # parsed, then no server


def test_the_console_script_is_installed() -> None:
    """pyproject's ``[project.scripts]`` entry, as ``pip install`` made it."""
    script = shutil.which("mpuflask", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("mpuflask is not installed as a script (pip install -e .)")
    result = subprocess.run(
        [script, "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "upload" in result.stdout


def test_a_target_folder_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "out.bin"
    result = CliRunner().invoke(main, ["download", "http://127.0.0.1:9/k", str(target)])
    assert result.exit_code == 1
    assert result.output.startswith("Error: [Errno 2] No such file or directory")
