"""Operations under a real gunicorn: metrics across workers, stalled clients,
the periodic sweep, and the warning for an open server without auth."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import requests

from .servers import free_port
from .servers import gunicorn_server

pytestmark = pytest.mark.e2e


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            if line.rsplit(" ", 1)[0] == name or name.endswith("}"):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_sum_all_workers(tmp_path: Path) -> None:
    with gunicorn_server(tmp_path, workers=3, threads=2) as server:
        # Enough concurrent connections that several workers answer.
        session_count = 12
        sessions = [requests.Session() for _ in range(session_count)]
        for session in sessions:
            assert session.post(server.url + "k?action=mpu-create").status_code == 200
        text = requests.get(server.url + "?action=metrics").text
    name = 'mpuflask_requests_total{action="mpu-create",method="POST",status="200"}'
    assert _metric(text, name) == session_count
    assert _metric(text, "mpuflask_uploads_in_progress") == session_count


def test_a_stalled_part_is_cut_off_and_leaves_nothing(tmp_path: Path) -> None:
    env = {"MPUFLASK_BODY_TIMEOUT": "1"}
    with gunicorn_server(tmp_path, workers=1, threads=2, env=env) as server:
        created = requests.post(server.url + "k?action=mpu-create").json()
        upload_id = created["uploadId"]
        port = int(server.url.rsplit(":", 1)[1].strip("/"))
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(
                f"PUT /k?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1 HTTP/1.1\r\n"
                "Host: x\r\nContent-Length: 1000\r\n\r\n".encode()
                + b"only ten b"
            )
            sock.settimeout(30)
            answer = b""
            while chunk := sock.recv(65536):  # until the server closes
                answer += chunk
        head, _, body = answer.decode().partition("\r\n\r\n")
        assert head.startswith("HTTP/1.1 408")
        assert body == "Request Timeout: no body bytes arrived for 1 seconds"
        listed = requests.get(
            server.url + f"k?action=mpu-listparts&uploadId={upload_id}"
        ).json()
        assert listed["parts"] == []
        assert list((server.data_dir / "tmp").iterdir()) == []
        # The worker is free again and the upload usable.
        part = requests.put(
            server.url + f"k?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1",
            data=b"whole part",
        )
        assert part.status_code == 200


def test_periodic_sweep_removes_expired_uploads(tmp_path: Path) -> None:
    env = {"MPUFLASK_UPLOAD_TTL": "1", "MPUFLASK_SWEEP_INTERVAL": "0.2"}
    with gunicorn_server(tmp_path, workers=2, env=env) as server:
        upload_id = requests.post(server.url + "k?action=mpu-create").json()["uploadId"]
        requests.put(
            server.url + f"k?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1",
            data=b"soon gone",
        )
        upload_dir = server.data_dir / "uploads" / upload_id
        trash = server.data_dir / "trash"

        def swept() -> bool:  # the upload gone, then its bytes (abort's two steps)
            return not upload_dir.exists() and not any(trash.iterdir())

        deadline = time.monotonic() + 20
        while not swept() and time.monotonic() < deadline:
            time.sleep(0.1)  # polling another process's effect, with a deadline
        assert not upload_dir.exists()
        assert list(trash.iterdir()) == []
        answer = requests.put(
            server.url + f"k?action=mpu-uploadpart&uploadId={upload_id}&partNumber=2",
            data=b"late",
        )
        assert (
            answer.text
            == "uploadPart: The specified multipart upload does not exist. (10024)"
        )


def test_open_bind_without_auth_is_warned(tmp_path: Path) -> None:
    port = free_port()
    env = {"GUNICORN_BIND": f"0.0.0.0:{port}"}
    with gunicorn_server(tmp_path, workers=1, env=env, port=port) as server:
        log = server.log.read_text()
    assert "without authentication" in log
    with gunicorn_server(tmp_path, workers=1) as server:
        log = server.log.read_text()
    assert "without authentication" not in log


def test_no_metrics_folder_is_left_behind(tmp_path: Path) -> None:
    """Each start made a mpuflask-metrics-<pid> folder and never removed it."""
    import subprocess
    import sys

    temp = tmp_path / "tmp"
    temp.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = temp / f"mpuflask-metrics-{dead.pid}"  # a server SIGKILLed earlier
    stale.mkdir()
    (stale / "counter_1.db").write_bytes(b"old")
    env = {"TMPDIR": str(temp)}
    with gunicorn_server(tmp_path, workers=1, threads=2, env=env) as server:
        requests.get(server.url + "?action=metrics").raise_for_status()
        assert [p.name for p in temp.iterdir()] == [
            f"mpuflask-metrics-{server.process.pid}"
        ]
    assert list(temp.iterdir()) == []
