"""The ``mpuflask`` command without a server: the group, options, missing deps."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mpuflask.cli import COMMANDS
from mpuflask.cli import main
from mpuflask.client.cli_options import parse_size
from mpuflask.client.install import install_command
from mpuflask.client.install import missing_dependency
from tests.servers import free_port

#: Run the CLI in a Python where ``import requests`` fails (a server install).
WITHOUT_REQUESTS = (
    "import sys; sys.modules['requests'] = None; from mpuflask.cli import main; main()"
)


def test_the_group_lists_every_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    for name in ("upload", "download", "abort", "ls", "uploads", "rm"):
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
    assert result.stderr == f"Error: {missing_dependency('requests')}\n"


def test_without_requests_the_library_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['requests'] = None; from mpuflask.client import Client"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert f"ImportError: {missing_dependency('requests')}\n" in result.stderr


PIP = f"{shlex.quote(sys.executable)} -m pip install"


@pytest.mark.parametrize(
    ("direct_url", "installed", "command"),
    [
        (None, True, f"{PIP} 'mpuflask[client]'"),
        (
            '{"url": "file:///src/mpuflask", "dir_info": {"editable": true}}',
            True,
            f"{PIP} -e '/src/mpuflask[client]'",
        ),
        (
            '{"url": "file:///my%20src/mpuflask", "dir_info": {}}',
            True,
            f"{PIP} '/my src/mpuflask[client]'",
        ),
        (
            '{"url": "file:///w/mpuflask-0.1.0-py3-none-any.whl", "archive_info": {}}',
            True,
            f"{PIP} 'requests>=2.31' 'tqdm>=4.66'",
        ),
        (
            '{"url": "https://example.com/m.git", "vcs_info": {"vcs": "git"}}',
            True,
            f"{PIP} 'requests>=2.31' 'tqdm>=4.66'",
        ),
        (None, False, f"{PIP} 'requests>=2.31' 'tqdm>=4.66'"),
    ],
    ids=["index", "editable-clone", "clone", "wheel", "vcs", "not-installed"],
)
def test_the_install_hint_names_what_works_for_this_install(
    direct_url: str | None, installed: bool, command: str
) -> None:
    """From a clone, ``mpuflask[client]`` is not on any index: name the folder."""
    assert install_command(direct_url, installed=installed) == command


def test_the_install_hint_here_points_at_a_folder_with_the_client_extra() -> None:
    """This test run's own install: the hint's folder has the ``client`` extra."""
    hint = missing_dependency("requests")
    if "[client]" not in hint or "'mpuflask[client]'" in hint:
        pytest.skip(f"mpuflask is not installed from a folder here: {hint}")
    folder = Path(hint.rpartition("[client]")[0].rpartition(" ")[2].strip("'"))
    assert '\nclient = [\n    "requests' in (folder / "pyproject.toml").read_text()


def test_a_refused_connection_is_one_line_and_exit_1(tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"x")
    port = free_port()
    for quiet in (["-q"], []):
        result = CliRunner().invoke(
            main,
            [
                "upload",
                str(source),
                f"http://127.0.0.1:{port}/k",
                "--retries",
                "0",
                *quiet,
                "--state-dir",
                str(tmp_path / "s"),
            ],
        )
        assert result.exit_code == 1
        assert result.output == (
            f"Error: mpu-create http://127.0.0.1:{port}/k: 127.0.0.1:{port} refused "
            "the connection; is the server running, at this host and port?\n"
        )


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


def test_a_target_folder_that_does_not_exist_is_a_usage_error(
    tmp_path: Path,
) -> None:
    target = tmp_path / "missing" / "out.bin"
    result = CliRunner().invoke(main, ["download", "http://127.0.0.1:9/k", str(target)])
    assert result.exit_code == 2
    assert result.output.endswith(
        f"\nError: Invalid value for 'FILE': the folder "
        f"'{tmp_path / 'missing'}' does not exist\n"
    )
