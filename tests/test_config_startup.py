"""A bad setting stops the real server with one line, not a traceback per worker.

gunicorn checks the settings once in its master (``on_starting`` in
gunicorn.conf.py); ``wsgi.py`` turns a bad setting into one line for any other
runner (``flask --app wsgi``, a gunicorn without our config file).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from .servers import ROOT
from .servers import free_port
from .servers import gunicorn_executable
from .servers import gunicorn_server

pytestmark = pytest.mark.e2e

#: A refused server exits by itself; this only bounds a broken test.
EXIT_TIMEOUT = 120

BAD = [
    (
        {"MPUFLASK_AUTH_HOOK": "examples.hooks.api_key:require_api_key"},
        "unknown setting MPUFLASK_AUTH_HOOK in the environment; did you mean MPUFLASK_AUTH_HOOKS?",
    ),
    (
        {"MPUFLASK_WEB_UI": "maybe"},
        "MPUFLASK_WEB_UI must be true or false (or 1/0, yes/no, on/off), not 'maybe'",
    ),
    (
        {"MPUFLASK_AUTH_HOOKS": "nowhere.auth:api_key"},
        "MPUFLASK_AUTH_HOOKS cannot import 'nowhere.auth:api_key' (No module named 'nowhere'); "
        "the module must be importable from the server's working directory or installed",
    ),
    (
        {"MPUFLASK_LOG_FORMAT": "xml"},
        "MPUFLASK_LOG_FORMAT must be json or text, not 'xml'",
    ),
    (
        {"MPUFLASK_SIGNING_KEY": ""},
        "MPUFLASK_SIGNING_KEY is set but empty; unset it or give it a value",
    ),
]


def _environment(tmp_path: Path, settings: dict[str, str]) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if k != "GUNICORN_ACCESSLOG"},
        "MPUFLASK_DATA_DIR": str(tmp_path / "data"),
        "GUNICORN_BIND": f"127.0.0.1:{free_port()}",
        "GUNICORN_WORKERS": "3",
        **settings,
    }


def _run(command: list[str], environ: dict[str, str]) -> tuple[int, str]:
    done = subprocess.run(
        command, cwd=ROOT, env=environ, capture_output=True, timeout=EXIT_TIMEOUT
    )
    return done.returncode, (done.stdout + done.stderr).decode()


@pytest.mark.parametrize(("settings", "line"), BAD)
def test_gunicorn_stops_with_the_one_line(
    tmp_path: Path, settings: dict[str, str], line: str
) -> None:
    status, output = _run(
        [gunicorn_executable(), "wsgi:app"], _environment(tmp_path, settings)
    )
    assert status == 1
    assert output.count(line) == 1, output
    assert "Traceback" not in output
    assert "Booting worker" not in output  # stopped before any worker started
    assert not (tmp_path / "data").exists()


def test_without_our_config_file_each_worker_says_one_line(tmp_path: Path) -> None:
    settings, line = BAD[0]
    bare = tmp_path / "bare.conf.py"
    bare.write_text("control_socket_disable = True\n")
    environ = _environment(tmp_path, settings)
    # One worker: with two, gunicorn 27's master sometimes reaps the second
    # failed worker while halting for the first and dies with its own
    # HaltServer traceback (status 1) -- gunicorn's race, not ours.
    command = [gunicorn_executable(), "-c", str(bare), "-w", "1"]
    command += ["-b", environ["GUNICORN_BIND"], "wsgi:app"]
    status, output = _run(command, environ)
    assert status == 4  # gunicorn's "App failed to load": the master stops too
    assert output.count(line) == 1, output
    assert "Traceback" not in output


def test_flask_cli_says_one_line(tmp_path: Path) -> None:
    settings, line = BAD[1]
    environ = _environment(tmp_path, settings)
    status, output = _run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "routes"], environ
    )
    assert (status, output) == (4, f"mpuflask: {line}\n")


def test_token_zero_is_a_token_under_gunicorn(tmp_path: Path) -> None:
    port = free_port()
    env = {"GUNICORN_BIND": f"0.0.0.0:{port}", "MPUFLASK_AUTH_TOKENS": "0"}
    with gunicorn_server(tmp_path, workers=1, env=env, port=port) as server:
        url = f"{server.url}k?action=mpu-create"
        anonymous = requests.post(url, timeout=30)
        bearer = requests.post(url, headers={"Authorization": "Bearer 0"}, timeout=30)
        log = server.log.read_text()
    assert anonymous.status_code == 401
    assert bearer.status_code == 200
    assert "without authentication" not in log


def test_a_data_dir_that_is_a_file_stops_gunicorn_with_one_line(
    tmp_path: Path,
) -> None:
    """It stopped every worker with a FileExistsError traceback (three of them
    in 20 lines for the default workers)."""
    plain = tmp_path / "afile"
    plain.write_text("not a directory")
    line = (
        f"MPUFLASK_DATA_DIR '{plain}' cannot be used: it, or a folder above it,"
        " is not a directory"
    )
    for data_dir in (plain, plain / "sub"):
        environ = _environment(tmp_path, {"MPUFLASK_DATA_DIR": str(data_dir)})
        status, output = _run([gunicorn_executable(), "wsgi:app"], environ)
        assert status == 1, output
        expected = line.replace(f"'{plain}'", f"'{data_dir}'")
        assert output.count(expected) == 1, output
        assert "Traceback" not in output
        assert "Booting worker" not in output
    assert plain.read_text() == "not a directory"


def _unwritable(folder: Path) -> list[str]:
    """Make ``folder`` read-only for the server; the command prefix that runs
    a program as a user the mode binds (root bypasses it: drop the
    capabilities that let it, as the server's own user would not have them)."""
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("root, and no setpriv to drop the capabilities that bypass modes")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]


def test_a_data_dir_the_server_may_not_write_stops_it_with_one_line(
    tmp_path: Path,
) -> None:
    """It started, said healthy, and answered 500 to every write."""
    data_dir = tmp_path / "data"
    environ = _environment(tmp_path, {})
    status, output = _run(
        [sys.executable, "-c", "import mpuflask.wsgi"], environ
    )  # a store as a first run leaves it
    assert status == 0, output
    before = sorted(str(path) for path in data_dir.rglob("*"))
    prefix = _unwritable(data_dir)
    try:
        status, output = _run([*prefix, gunicorn_executable(), "wsgi:app"], environ)
        flask_status, flask_output = _run(
            [*prefix, sys.executable, "-m", "flask", "--app", "wsgi", "routes"],
            environ,
        )
    finally:
        for path in [data_dir, *data_dir.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    line = (
        f"MPUFLASK_DATA_DIR '{data_dir}' cannot be used: the server may not write"
        " it; give its user write access"
    )
    assert status == 1, output
    assert output.count(line) == 1, output
    assert "Traceback" not in output
    assert (flask_status, flask_output) == (4, f"mpuflask: {line}\n")
    assert sorted(str(path) for path in data_dir.rglob("*")) == before


@pytest.mark.parametrize(
    ("settings", "line"),
    [
        (
            {"GUNICORN_WORKERS": "abc"},
            "GUNICORN_WORKERS must be an integer from 1 to 1024, not 'abc'",
        ),
        (
            {"GUNICORN_WORKERS": "0"},  # started, and hung every request
            "GUNICORN_WORKERS must be an integer from 1 to 1024, not '0'",
        ),
        (
            {"GUNICORN_THREADS": "4x"},
            "GUNICORN_THREADS must be an integer from 1 to 10000, not '4x'",
        ),
        (
            {"GUNICORN_TIMEOUT": "1.5"},
            "GUNICORN_TIMEOUT must be an integer from 0 to 1000000000, not '1.5'",
        ),
        (
            {"GUNICORN_BIND": ""},  # served nothing, silently, forever
            "GUNICORN_BIND is set but empty; unset it or give it a value",
        ),
        (
            {"GUNICORN_WORKER_CLASS": "nonexist.Worker"},
            "GUNICORN_WORKER_CLASS 'nonexist.Worker' is no worker class gunicorn can"
            " load (gthread, sync, or a dotted path like mpuflask.worker.DeadlineWorker)",
        ),
        (
            {"GUNICORN_LOGLEVEL": "bogus"},
            "GUNICORN_LOGLEVEL must be debug, info, warning, error or critical,"
            " not 'bogus'",
        ),
        (
            {"GUNICORN_HEADER_TIMEOUT": ""},  # silently the default, before
            "GUNICORN_HEADER_TIMEOUT is set but empty; unset it or give it a value",
        ),
        (
            {"GUNICORN_HEADER_TIMEOUT": "abc"},  # refused after "Listening at"
            "GUNICORN_HEADER_TIMEOUT must be a positive number of seconds, not 'abc'",
        ),
        (
            {"GUNICORN_ACCESSLOG": ""},  # off, unlike every other empty setting
            "GUNICORN_ACCESSLOG is set but empty; unset it or give it a value",
        ),
        (
            {"GUNICORN_CONTROL": "maybe"},  # anything but 1 meant off
            "GUNICORN_CONTROL must be true or false (or 1/0, yes/no, on/off),"
            " not 'maybe'",
        ),
        (
            {"GUNICORN_WORKER": "3"},  # ignored: the default count served
            "unknown setting GUNICORN_WORKER in the environment; did you mean"
            " GUNICORN_WORKERS?",
        ),
        (
            {"GUNICORN_THREDS": "8"},
            "unknown setting GUNICORN_THREDS in the environment; did you mean"
            " GUNICORN_THREADS?",
        ),
    ],
)
def test_bad_gunicorn_overrides_stop_it_with_one_line(
    tmp_path: Path, settings: dict[str, str], line: str
) -> None:
    """An operator's hunt: these gave a traceback, an error naming no
    variable, or a server that ran without serving."""
    status, output = _run(
        [gunicorn_executable(), "wsgi:app"], _environment(tmp_path, settings)
    )
    assert (status, output) == (1, f"mpuflask: {line}\n")
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("option", "line"),
    [
        (["-w", "0"], "mpuflask: --workers must be at least 1, not 0"),
        (["--threads", "0"], "mpuflask: --threads must be at least 1, not 0"),
    ],
)
def test_no_workers_or_threads_on_the_command_line_stop_it(
    tmp_path: Path, option: list[str], line: str
) -> None:
    """``-w 0`` listened, accepted connections and never answered; the
    environment's GUNICORN_WORKERS=0 was refused, the option was not."""
    environ = _environment(tmp_path, {})
    status, output = _run([gunicorn_executable(), *option, "wsgi:app"], environ)
    assert status == 1, output
    assert output.count(line) == 1, output
    assert "Traceback" not in output
    assert "Booting worker" not in output
    assert not (tmp_path / "data").exists()


def test_a_port_out_of_range_stops_it_with_one_line(tmp_path: Path) -> None:
    """``-b 127.0.0.1:99999`` gave gunicorn's 45-line OverflowError traceback."""
    environ = _environment(tmp_path, {"GUNICORN_BIND": "127.0.0.1:99999"})
    status, output = _run([gunicorn_executable(), "wsgi:app"], environ)
    line = "mpuflask: cannot listen on '127.0.0.1:99999': the port must be 0 to 65535"
    assert status == 1, output
    assert output.count(line) == 1, output
    assert "Traceback" not in output


def test_an_s3_engine_out_of_reach_stops_it_with_one_line(tmp_path: Path) -> None:
    """Each worker's start-up sweep failed with a 100-line botocore traceback
    (and the master could die of several at once with its own)."""
    pytest.importorskip("boto3")
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = {
        "MPUFLASK_STORE": "s3",
        "MPUFLASK_S3_BUCKET": "b",
        "MPUFLASK_S3_ENDPOINT": endpoint,
        "MPUFLASK_S3_REGION": "us-east-1",
        "MPUFLASK_S3_ACCESS_KEY_ID": "x",
        "MPUFLASK_S3_SECRET_ACCESS_KEY": "y",
        "MPUFLASK_S3_MAX_ATTEMPTS": "1",
        "MPUFLASK_S3_STAGE_UPLOADS": "false",
    }
    status, output = _run(
        [gunicorn_executable(), "wsgi:app"], _environment(tmp_path, settings)
    )
    line = (
        "mpuflask: the s3 store cannot reach its bucket: Could not connect to the"
        f' endpoint URL: "{endpoint}/b/mpuflask-start-probe"'
        " (MPUFLASK_SWEEP_ON_START=false starts without asking)"
    )
    assert status == 1, output
    assert output.count(line) == 1, output
    assert "Traceback" not in output
    assert "Booting worker" not in output


@pytest.mark.parametrize(
    ("value", "disabled"),
    [("1", False), ("true", False), ("on", False), ("0", True), ("no", True)],
)
def test_gunicorn_control_takes_the_boolean_words(
    tmp_path: Path, value: str, disabled: bool
) -> None:
    """GUNICORN_CONTROL reads true/false as every boolean setting does
    (``true`` meant off before: only ``1`` turned it on)."""
    environ = {
        **_environment(tmp_path, {"GUNICORN_CONTROL": value}),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    status, output = _run(
        [
            sys.executable,
            "-c",
            "from mpuflask.serving import gunicorn_settings as s;"
            " print(s.control_socket_disable)",
        ],
        environ,
    )
    assert (status, output) == (0, f"{disabled}\n")


def test_gunicorns_own_variables_are_not_settings(tmp_path: Path) -> None:
    """GUNICORN_CMD_ARGS is gunicorn's own (its flags): not refused as unknown."""
    environ = {
        **_environment(
            tmp_path,
            {"GUNICORN_CMD_ARGS": "--workers 2", "GUNICORN_PORT": "tcp://10.0.0.1:80"},
        ),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    status, output = _run(
        [
            sys.executable,
            "-c",
            "from mpuflask.serving import gunicorn_settings as s; print(s.threads)",
        ],
        environ,
    )
    assert (status, output) == (0, "64\n")
