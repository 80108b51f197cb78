"""The CLI against real gunicorn: 1 GiB, a killed run resumed, injected faults.

Each test starts gunicorn (``tests/servers.py``) with ``MPUFLASK_DURABLE=false``
(fsync is the disk's speed, not the client's) and runs the CLI as a separate
process, as a user would. ``MPUFLASK_TEST_CLI_MIB`` shrinks the big upload
(default 1024 MiB: about 25 s on two cores).
"""

from __future__ import annotations

import filecmp
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
import requests

from tests.client.conftest import write_file
from tests.client.middleware import RefusePart
from tests.client.middleware import read_log
from tests.servers import gunicorn_server

pytestmark = pytest.mark.e2e

T = TypeVar("T")
MIB = 1024 * 1024
#: Parts in the smaller tests: the server's minimum is lowered to this.
PART = 64 * 1024
SMALL_PARTS = ["--part-size", "64KiB", "--min-part-size", "64KiB"]
FAST = {"MPUFLASK_DURABLE": "false", "MPUFLASK_MIN_PART_SIZE": str(PART)}


def cli(*args: str | Path) -> list[str]:
    """The ``mpuflask`` command line (the console script's own code).

    Ctrl-C raises KeyboardInterrupt in it, as when it is started from a
    terminal: a test run started where SIGINT is ignored (a background job
    of a script, ``nohup``) would otherwise pass that on, and the CLI would
    never see the test's Ctrl-C.
    """
    code = (
        "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from mpuflask.cli import main; main()"
    )
    return [sys.executable, "-c", code, *(str(a) for a in args)]


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli(*args), capture_output=True, text=True, timeout=600, check=False
    )


def wait_for(probe: Callable[[], T | None], what: str, timeout: float = 60) -> T:
    """Poll ``probe`` until it answers something, or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found is not None:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def make_big_file(path: Path, mib: int) -> None:
    """``mib`` MiB where every MiB differs (a swapped part would show), quickly."""
    block = bytearray(os.urandom(MIB))
    with path.open("wb") as out:
        for index in range(mib):
            block[:8] = index.to_bytes(8, "big")
            block[MIB // 2 : MIB // 2 + 8] = index.to_bytes(8, "big")
            out.write(block)


def test_cli_uploads_1_gib_with_8_threads(tmp_path: Path) -> None:
    mib = int(os.environ.get("MPUFLASK_TEST_CLI_MIB", "1024"))
    source, target = tmp_path / "big.bin", tmp_path / "back.bin"
    make_big_file(source, mib)
    env = {"MPUFLASK_DURABLE": "false"}
    with gunicorn_server(tmp_path, workers=4, env=env) as server:
        url = f"{server.url}big/one%20gib.bin"
        up = run(
            "upload", source, url, "-j", "8", "-q", "--state-dir", tmp_path / "state"
        )
        assert up.returncode == 0, up.stderr
        parts = -(-mib // 5)
        assert f"(verified), {parts} parts of 5242880 bytes, 0 already" in up.stdout
        down = run("download", url, target, "-j", "8", "-q")
        assert down.returncode == 0, down.stderr
        assert "warning" not in down.stderr  # the etag was recomputed
    assert target.stat().st_size == mib * MIB
    assert filecmp.cmp(source, target, shallow=False)


@pytest.mark.parametrize(
    "stop", [signal.SIGKILL, signal.SIGINT], ids=["kill", "ctrl-c"]
)
def test_an_interrupted_upload_resumes_sending_only_missing_parts(
    tmp_path: Path, stop: signal.Signals
) -> None:
    """The server stores 8 parts and holds the rest; the CLI is stopped; run again."""
    parts, admitted = 24, 8
    source = tmp_path / "source.bin"
    data = write_file(source, parts * PART - 100)
    log, gate, state = tmp_path / "requests.log", tmp_path / "gate", tmp_path / "state"
    env = {
        **FAST,
        "MPU_TEST_LOG": str(log),
        "MPU_TEST_ADMIT": str(admitted),
        "MPU_TEST_COUNTER": str(tmp_path / "admitted"),
        "MPU_TEST_GATE": str(gate),
    }
    app = "tests.client.counting_wsgi:app"
    with gunicorn_server(tmp_path, workers=2, env=env, app=app) as server:
        url = f"{server.url}resume/file.bin"
        command = cli(
            "upload", source, url, "-j", "4", *SMALL_PARTS, "--state-dir", state
        )
        first = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            upload_id = wait_for(lambda: _recorded_upload(state), "the resume record")
            wait_for(
                lambda: _stored_count(url, upload_id) >= admitted or None,
                f"{admitted} parts on the server",
            )
            first.send_signal(stop)
            _, stderr = first.communicate(timeout=30)
        finally:
            first.kill()
            gate.touch()  # held parts answer 503 now
        if stop == signal.SIGINT:
            assert first.returncode == 130, stderr
            assert "interrupted: run the same command again to resume" in stderr
        else:
            assert first.returncode == -signal.SIGKILL
        assert _stored_count(url, upload_id) == admitted

        second = subprocess.run(
            [*command, "-H", "X-Mpu-Test-Pass: 1"],  # let through: a new client
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert second.returncode == 0, second.stderr
        assert f"{admitted} already on the server" in second.stdout
        assert (
            f"resuming upload {upload_id}: {admitted} of {parts} parts" in second.stderr
        )
        assert requests.get(f"{url}?action=get", timeout=30).content == data

    stored = [
        int(part)
        for _, action, part, status in read_log(log)
        if action == "mpu-uploadpart" and status == 200
    ]
    assert Counter(stored) == dict.fromkeys(range(1, parts + 1), 1), (
        "each part stored once"
    )
    assert list(state.iterdir()) == []


def _recorded_upload(state: Path) -> str | None:
    records = list(state.glob("*.json")) if state.exists() else []
    return str(json.loads(records[0].read_text())["upload_id"]) if records else None


def _stored_count(url: str, upload_id: str) -> int:
    listed = requests.get(
        url, params={"action": "mpu-listparts", "uploadId": upload_id}, timeout=10
    )
    assert listed.status_code == 200, listed.text
    return len(listed.json()["parts"])


def test_uploads_complete_through_503s(tmp_path: Path) -> None:
    source, target = tmp_path / "source.bin", tmp_path / "back.bin"
    data = write_file(source, 40 * PART - 7)
    log = tmp_path / "requests.log"
    env = {**FAST, "MPU_TEST_503_EVERY": "3", "MPU_TEST_LOG": str(log)}
    with gunicorn_server(
        tmp_path, workers=2, env=env, app="tests.client.faulty_wsgi:app"
    ) as server:
        url = f"{server.url}flaky/file.bin"
        up = run(
            "upload",
            source,
            url,
            "-j",
            "4",
            *SMALL_PARTS,
            "--state-dir",
            tmp_path / "s",
        )
        assert up.returncode == 0, up.stderr
        assert f"mpu-uploadpart {url} answered 503: injected 503; retrying" in (
            up.stderr
        )
        down = run("download", url, target, "-j", "4", *SMALL_PARTS, "-q")
        assert down.returncode == 0, down.stderr
    assert target.read_bytes() == data
    statuses = Counter(status for *_, status in read_log(log))
    assert statuses[503] >= 10 and statuses[200] + statuses[206] > 40


def test_a_400_stops_the_upload_at_once_with_the_servers_message(
    tmp_path: Path,
) -> None:
    source = tmp_path / "source.bin"
    write_file(source, 40 * PART)
    log = tmp_path / "requests.log"
    env = {**FAST, "MPU_TEST_REFUSE_PART": "3", "MPU_TEST_LOG": str(log)}
    with gunicorn_server(
        tmp_path, workers=2, env=env, app="tests.client.faulty_wsgi:app"
    ) as server:
        url = f"{server.url}refused/file.bin"
        up = run(
            "upload",
            source,
            url,
            "-j",
            "4",
            *SMALL_PARTS,
            "--state-dir",
            tmp_path / "s",
        )
    assert up.returncode == 1
    assert f"Error: mpu-uploadpart {url} answered 400: {RefusePart.TEXT}" in up.stderr
    assert "retrying" not in up.stderr
    puts = [
        int(part) for _, action, part, _ in read_log(log) if action == "mpu-uploadpart"
    ]
    assert puts.count(3) == 1, "a 400 is never retried"
    # Parts 1 to 4 are in flight when part 3 is refused. While its thread
    # reads the refusal, the other three may finish and start more: on a
    # loaded machine that thread can wait its turn for a while (9 parts were
    # seen in CI). Then nothing more starts, of the 40.
    assert len(puts) <= 4 + 2 * 4, "the upload stops once the refusal is read"
    assert "mpu-complete" not in {action for _, action, _, _ in read_log(log)}


def test_piped_data_and_the_api_key_hook_of_the_docs(tmp_path: Path) -> None:
    """``cat | mpuflask upload - URL -H 'X-Api-Key: ...'``, against gunicorn
    running examples/hooks/api_key.py (docs/hooks.md) by configuration."""
    data = random.Random(5).randbytes(10 * PART + 5)
    headers = tmp_path / "headers"
    headers.write_text("X-Api-Key: k-alice\n")
    env = {
        **FAST,
        "MPUFLASK_AUTH_HOOKS": "examples.hooks.api_key:require_api_key",
        "MYCO_API_KEYS": json.dumps({"k-alice": "alice"}),
    }
    with gunicorn_server(tmp_path, workers=2, env=env) as server:
        url = f"{server.url}piped/data.bin"
        upload = cli("upload", "-", url, *SMALL_PARTS, "-j", "3")
        refused = subprocess.run(upload, input=data, capture_output=True, timeout=600)
        assert refused.returncode == 1
        assert refused.stderr.decode().endswith(
            f"Error: mpu-create {url} answered 401: Unauthorized: unknown or "
            "missing X-Api-Key; give the credentials it expects: --token (or "
            "MPUFLASK_TOKEN) or -H 'Name: value'\n"
        )
        up = subprocess.run(
            [*upload, "-H", "X-Api-Key: k-alice"],
            input=data,
            capture_output=True,
            timeout=600,
        )
        assert up.returncode == 0, up.stderr
        assert f"{len(data)} bytes in 11 parts of {PART} bytes" in up.stdout.decode()
        down = run("download", url, f"{tmp_path}/", "-H", f"@{headers}", "-q")
        assert down.returncode == 0, down.stderr
        assert (tmp_path / "data.bin").read_bytes() == data
        assert run("rm", url, "-H", f"@{headers}").returncode == 0
        gone = requests.get(
            f"{url}?action=get", headers={"X-Api-Key": "k-alice"}, timeout=30
        )
        assert gone.status_code == 404
