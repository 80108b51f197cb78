"""The README runs: its curl walk-through, its commands, its install line.

The walk-through (the ``bash`` block under "A walk through all six actions
with curl") is taken from README.md as it is and run with bash against a real
gunicorn: it must capture its ids and etags itself, with no placeholder left.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mpuflask.cli import COMMANDS

from .servers import ROOT
from .servers import gunicorn_server

README = (ROOT / "README.md").read_text()


def walk_through() -> str:
    section = README.split("### A walk through all six actions with curl", 1)[1]
    found = re.search(r"^```bash\n(.*?)^```$", section, re.M | re.S)
    assert found, "the walk-through's bash block"
    return found.group(1)


@pytest.mark.e2e
def test_the_curl_walk_through_runs_as_written(tmp_path: Path) -> None:
    script = walk_through()
    work = tmp_path / "work"
    work.mkdir()
    with gunicorn_server(tmp_path, workers=2, threads=4) as server:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=work,
            env={**os.environ, "S": server.url.rstrip("/")},
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(r'etag: "[0-9a-f]{32}-2"', lines[0].strip(), re.I), lines
    assert lines[1:] == [
        "204",
        "identical",
        "100",
        lines[4],  # the listing, checked below
        "[]",
        "204",
    ], done.stdout
    assert "'key': 'videos/cat.mp4', 'size': 7340032" in lines[4]
    assert "'contentType': 'video/mp4'" in lines[4]


def test_the_walk_through_has_no_placeholder() -> None:
    # Only the comments show answers elided with "...": every command is whole.
    commands = [re.sub(r"(^|\s)#.*", "", line) for line in walk_through().splitlines()]
    assert not [line for line in commands if "..." in line]
    assert "OTHER=$(" in "\n".join(commands)


def test_the_readme_names_every_admin_command() -> None:
    operating = README.split("## Operating it", 1)[1].split("\n## ", 1)[0]
    for command in [
        "mpuflask serve",
        "?action=health",
        "?action=metrics",
        "flask --app mpuflask.wsgi gc",
        "mpuflask sign",
        "mpuflask ls",
        "mpuflask uploads",
        "mpuflask rm",
        "mpuflask abort",
    ]:
        assert command in operating, command
    for named in re.findall(r"`mpuflask (\w+)", README):
        assert named in COMMANDS, named


def test_the_install_line_works_from_a_clone() -> None:
    assert "pip install '.[client]'" in README
    assert "pip install 'mpuflask[client]'" not in README


def test_the_gc_command_the_readme_gives(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "mpuflask.wsgi", "gc"],
        cwd=tmp_path,
        env={**os.environ, "MPUFLASK_DATA_DIR": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout) == (
        0,
        "removed 0 expired upload(s) and leftover(s)\n",
    ), done.stderr
