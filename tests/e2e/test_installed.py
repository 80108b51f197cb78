"""Served from the package: the wheel, installed anywhere, serves with our settings.

Builds the project's wheel, installs it (with the client extra) into a fresh
virtual environment outside the repository, and runs the documented command,
``mpuflask serve -b 127.0.0.1:PORT``, from an empty directory: no
``gunicorn.conf.py``, no ``wsgi.py``, nothing of the clone on ``sys.path``.
A part trickled over 45 s at ~6.8 KB/s (above MPUFLASK_BODY_MIN_RATE's
4096 B/s floor) must be stored: gunicorn's defaults (a sync worker killed
after 30 s) would cut it with ``WORKER TIMEOUT`` and an HTML 500. The
installed client then lists what the installed server holds.

About 1-2 minutes: the wheel, a venv and its dependencies (from the
configured package index, through pip's cache), then the 45 s part.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.servers import ROOT
from tests.servers import free_port

pytestmark = pytest.mark.e2e

#: Bounds for the slow steps; only a broken machine reaches them.
BUILD_TIMEOUT = 600
START_TIMEOUT = 90.0
PATIENCE = 120.0

#: 45 pieces of 6,800 bytes, one a second: 306,000 bytes over ~45 s.
PIECES = 45
PIECE = 6800
PACE = 1.0


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv outside the repository with the built wheel installed."""
    work = tmp_path_factory.mktemp("installed")
    source = work / "source"  # a copy: building in the clone leaves build/ there
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "mpuflask",
        source / "mpuflask",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    wheels = work / "wheels"
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(wheels), "."],
        cwd=source,
    )
    (wheel,) = wheels.glob("mpuflask-*.whl")
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=work)
    _run([str(venv / "bin" / "pip"), "install", f"{wheel}[client]"], cwd=work)
    assert not str(venv).startswith(str(ROOT))
    return venv


def _clean_environment() -> dict[str, str]:
    """The environment of a new operator: none of our settings, no clone."""
    drop = ("MPUFLASK_", "GUNICORN_", "PROMETHEUS_", "PYTHON", "VIRTUAL_ENV")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


@pytest.fixture
def served(installed: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``mpuflask serve -b 127.0.0.1:PORT`` from an empty directory."""
    run_dir = tmp_path / "anywhere"
    run_dir.mkdir()
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [str(installed / "bin" / "mpuflask"), "serve", "-b", f"127.0.0.1:{port}"],
            cwd=run_dir,
            env=_clean_environment(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:  # a bounded poll until the server answers
            assert process.poll() is None, log.read_text()
            try:
                if requests.get(url + "?action=health", timeout=10).ok:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield url, log
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_installed_package_is_the_one_served(installed: Path) -> None:
    where = _run(
        [
            str(installed / "bin" / "python"),
            "-c",
            "import mpuflask; print(mpuflask.__file__)",
        ],
        cwd=installed,
        env=_clean_environment(),
    )
    assert where.startswith(str(installed)), where


def test_a_part_trickled_over_45_s_is_stored_not_cut(
    served: tuple[str, Path], tmp_path: Path
) -> None:
    url, log = served
    created = requests.post(url + "slow.bin?action=mpu-create", timeout=PATIENCE)
    upload_id = created.json()["uploadId"]
    pieces = [bytes([65 + n % 26]) * PIECE for n in range(PIECES)]
    data = b"".join(pieces)
    port = int(url.rsplit(":", 1)[1].strip("/"))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=PATIENCE)
    started = time.monotonic()
    connection.putrequest(
        "PUT", f"/slow.bin?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1"
    )
    connection.putheader("Content-Length", str(len(data)))
    connection.endheaders()
    for piece in pieces:
        connection.send(piece)
        time.sleep(PACE)  # the client's pace, not a sync wait
    answer = connection.getresponse()
    body = answer.read()
    elapsed = time.monotonic() - started
    connection.close()
    assert answer.status == 200, body
    etag = hashlib.md5(data).hexdigest()
    assert elapsed > 40  # it really took longer than gunicorn's default 30 s
    parts = [{"partNumber": 1, "etag": etag}]
    done = requests.post(
        url + f"slow.bin?action=mpu-complete&uploadId={upload_id}",
        json={"parts": parts},
        timeout=PATIENCE,
    )
    assert done.status_code == 200, done.text
    got = requests.get(url + "slow.bin?action=get", timeout=PATIENCE)
    assert got.content == data
    text = log.read_text()
    assert "Using worker: mpuflask.worker.DeadlineWorker" in text
    assert "WORKER TIMEOUT" not in text


def test_the_installed_client_lists_what_the_installed_server_holds(
    installed: Path, served: tuple[str, Path]
) -> None:
    url, _ = served
    source = installed.parent / "hello.txt"
    source.write_bytes(b"hello\n")
    mpuflask = str(installed / "bin" / "mpuflask")
    env = _clean_environment()
    _run([mpuflask, "upload", str(source), url + "docs/hello.txt"], installed, env)
    listed = _run([mpuflask, "ls", url + "docs/"], installed, env)
    assert listed.rstrip().endswith("6  docs/hello.txt"), listed
