"""Ctrl-C exits 130 with one line, for every command (docs/client.md's exit codes).

``upload`` and ``download`` said so already; ``ls``, ``uploads``, ``rm`` and
``abort`` ended in click's "Aborted!" with exit 1, the status of a failure.
Each runs as its own process against a server that accepts the connection
and never answers, and gets SIGINT once its request is waiting.
"""

from __future__ import annotations

import signal
import socket
import subprocess

import pytest

from tests.client.test_cli_e2e import cli


@pytest.mark.parametrize(
    "args",
    [
        ["ls", "{root}"],
        ["uploads", "{root}"],
        ["rm", "{root}k"],
        ["abort", "{root}k", "--upload-id", "U"],
    ],
    ids=lambda args: args[0],
)
def test_ctrl_c_while_waiting_for_the_server_exits_130(args: list[str]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(120)  # bounded: a loaded machine starts Python slowly
        root = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        command = cli(*(arg.format(root=root) for arg in args))
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as process:
            try:
                connection, _ = listener.accept()  # the request is on its way
                with connection:
                    process.send_signal(signal.SIGINT)
                    out, err = process.communicate(timeout=120)
            finally:
                process.kill()
    assert process.returncode == 130, (out, err)
    assert err == "interrupted: run the same command again to finish\n"
    assert "Aborted" not in out + err
