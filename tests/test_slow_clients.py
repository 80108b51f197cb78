"""Slow clients cannot starve the server (issue 10, finding 8).

Real gunicorn on loopback with our gunicorn.conf.py (mpuflask.worker's
DeadlineWorker) and short deadlines: a stalled request head, a trickled body
and a reader that stopped reading are each cut, while another client's health
checks are answered. Every wait is a bounded poll or a socket timeout far
above the deadline under test.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from mpuflask import create_app
from mpuflask.config import ConfigError
from mpuflask.worker import DEFAULT_HEADER_TIMEOUT
from mpuflask.worker import MAX_BUFFERED_HEAD
from mpuflask.worker import head_complete
from mpuflask.worker import header_timeout

from .e2e.support import wait_for
from .oracle import md5
from .servers import Server
from .servers import gunicorn_server

#: Far above every deadline used here: only a hung server reaches it.
PATIENCE = 60.0

HEAD_408 = "Request Timeout: the request headers did not arrive within 1 seconds"
BODY_408 = (
    "Request Timeout: the body arrived at under 1000 bytes per second over 1 seconds"
)


def _port(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1].strip("/"))


def _connect(server: Server, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(PATIENCE)
    sock.connect(("127.0.0.1", _port(server)))
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer


def _healthy(server: Server) -> bool:
    """A health check on a connection of its own is answered."""
    answer = requests.get(server.url + "?action=health", timeout=PATIENCE)
    return answer.status_code == 200 and answer.json() == {"status": "ok"}


@contextmanager
def _trickling(sock: socket.socket, interval: float = 0.1) -> Iterator[None]:
    """Send one body byte every ``interval`` seconds until the server closes."""
    stop = threading.Event()

    def trickle() -> None:
        while not stop.is_set():
            try:
                sock.send(b"x")
            except OSError:
                return
            stop.wait(interval)

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(PATIENCE)


# -- settings and helpers -----------------------------------------------------------


def test_header_timeout_setting() -> None:
    assert header_timeout({}) == DEFAULT_HEADER_TIMEOUT
    assert header_timeout({"GUNICORN_HEADER_TIMEOUT": "2.5"}) == 2.5
    for bad in ("0", "-1", "soon", "inf", "nan"):
        with pytest.raises(RuntimeError, match="GUNICORN_HEADER_TIMEOUT must be"):
            header_timeout({"GUNICORN_HEADER_TIMEOUT": bad})
    with pytest.raises(RuntimeError, match="GUNICORN_HEADER_TIMEOUT is set but empty"):
        header_timeout({"GUNICORN_HEADER_TIMEOUT": " "})


@pytest.mark.parametrize(
    ("data", "complete"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n", False),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", True),
        (b"\r\n\r\nGET / HTTP/1.1\r\n", False),  # empty lines before the request
        (b"\r\nGET / HTTP/1.1\r\n\r\n", True),
        (b"X" * MAX_BUFFERED_HEAD, True),  # the parser judges what is too long
    ],
)
def test_head_complete(data: bytes, complete: bool) -> None:
    assert head_complete(data) is complete


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        (
            "MPUFLASK_BODY_MIN_RATE",
            -1,
            "MPUFLASK_BODY_MIN_RATE must be an integer from 0 to 10^15, not -1",
        ),
        (
            "MPUFLASK_BODY_MIN_RATE",
            "1k",
            "MPUFLASK_BODY_MIN_RATE must be an integer from 0 to 10^15, not '1k'",
        ),
        (
            "MPUFLASK_BODY_RATE_WINDOW",
            0,
            "MPUFLASK_BODY_RATE_WINDOW must be an integer from 1 to 10^9, not 0",
        ),
        (
            "MPUFLASK_SEND_TIMEOUT",
            1.5,
            "MPUFLASK_SEND_TIMEOUT must be an integer from 0 to 10^9, not 1.5",
        ),
    ],
)
def test_bad_deadline_settings_fail_at_start(
    tmp_path: Path, setting: str, value: object, message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        create_app({"MPUFLASK_DATA_DIR": str(tmp_path), setting: value})
    assert str(refused.value) == message


# -- under gunicorn -----------------------------------------------------------------


@pytest.mark.e2e
def test_stalled_headers_are_cut_and_hold_no_thread(tmp_path: Path) -> None:
    env = {"GUNICORN_HEADER_TIMEOUT": "1"}
    # One worker with one thread: a head that held a thread would block all.
    with gunicorn_server(tmp_path, workers=1, threads=1, env=env) as server:
        stalled = [_connect(server) for _ in range(5)]
        for sock in stalled:
            sock.sendall(b"PUT /k?action=mpu-create HTTP/1.1\r\nHost: x\r\n")
        silent = _connect(server)
        assert _healthy(server)
        for sock in stalled:
            head, _, body = _read_until_closed(sock).decode().partition("\r\n\r\n")
            assert head.startswith("HTTP/1.1 408 Request Timeout\r\n")
            assert "Connection: close" in head
            assert body == HEAD_408
            sock.close()
        assert _read_until_closed(silent) == b""  # nothing was asked: no answer
        silent.close()
        assert _healthy(server)
        assert not (server.data_dir / "uploads").exists() or not any(
            (server.data_dir / "uploads").iterdir()
        )


@pytest.mark.e2e
def test_a_head_trickled_byte_by_byte_is_cut_too(tmp_path: Path) -> None:
    env = {"GUNICORN_HEADER_TIMEOUT": "1"}
    with gunicorn_server(tmp_path, workers=1, threads=1, env=env) as server:
        sock = _connect(server)
        sock.sendall(b"GET /?action=health HTTP/1.1\r\n")
        with _trickling(sock):  # "xxxx..." never ends the header block
            answer = _read_until_closed(sock).decode()
        assert answer.endswith("\r\n\r\n" + HEAD_408)
        sock.close()
        assert _healthy(server)


@pytest.mark.e2e
@pytest.mark.parametrize("action", ["mpu-uploadpart", "mpu-complete"])
def test_a_trickled_body_gets_408_and_stores_nothing(
    tmp_path: Path, action: str
) -> None:
    env = {
        "MPUFLASK_BODY_MIN_RATE": "1000",
        "MPUFLASK_BODY_RATE_WINDOW": "1",
        "MPUFLASK_BODY_TIMEOUT": "30",
    }
    with gunicorn_server(tmp_path, workers=1, threads=2, env=env) as server:
        upload_id = requests.post(server.url + "k?action=mpu-create").json()["uploadId"]
        query = f"action={action}&uploadId={upload_id}&partNumber=1"
        sock = _connect(server)
        sock.sendall(
            f"{'PUT' if action == 'mpu-uploadpart' else 'POST'} /k?{query} HTTP/1.1\r\n"
            "Host: x\r\nContent-Length: 100000\r\n\r\n".encode()
        )
        with _trickling(sock):
            assert _healthy(server)  # the other thread answers meanwhile
            answer = _read_until_closed(sock).decode()
        sock.close()
        head, _, body = answer.partition("\r\n\r\n")
        assert head.startswith("HTTP/1.1 408 ")
        assert "Connection: close" in head
        assert "Content-Type: text/plain; charset=utf-8" in head
        assert body == BODY_408
        listed = requests.get(
            server.url + f"k?action=mpu-listparts&uploadId={upload_id}"
        ).json()
        assert listed["parts"] == []
        assert list((server.data_dir / "tmp").iterdir()) == []
        assert requests.get(server.url + "k?action=get").status_code == 404
        # The server is free again and the upload usable.
        part = requests.put(
            server.url + f"k?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1",
            data=b"whole part",
        )
        assert part.status_code == 200


@pytest.mark.e2e
def test_a_reader_that_stops_reading_is_cut_and_its_version_released(
    tmp_path: Path,
) -> None:
    env = {"MPUFLASK_SEND_TIMEOUT": "2", "MPUFLASK_SWEEP_INTERVAL": "0.2"}
    with gunicorn_server(tmp_path, workers=1, threads=2, env=env) as server:
        # Far more than the socket buffers hold, so the writes block.
        data = b"0123456789abcdef" * (2 * 1024 * 1024)
        upload_id = requests.post(server.url + "big?action=mpu-create").json()[
            "uploadId"
        ]
        part = requests.put(
            server.url + f"big?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1",
            data=data,
        ).json()
        done = requests.post(
            server.url + f"big?action=mpu-complete&uploadId={upload_id}",
            json={"parts": [part]},
        )
        assert done.status_code == 200
        reader = _connect(server, rcvbuf=4096)
        reader.sendall(b"GET /big?action=get HTTP/1.1\r\nHost: x\r\n\r\n")
        received = 0
        stop_reading = threading.Event()

        def read_slowly() -> None:
            # About 1.6 MB/s: each 1 MiB write is done well within the send
            # timeout, and 32 MiB take long enough to delete the key meanwhile.
            nonlocal received
            while not stop_reading.is_set():
                received += len(reader.recv(16384))
                stop_reading.wait(0.01)

        pacer = threading.Thread(target=read_slowly, daemon=True)
        pacer.start()
        wait_for(lambda: received > 0, "the first bytes of the object")
        # The reader pins the version it opened: deleting the key leaves it
        # in the trash until the reader lets go.
        assert requests.delete(server.url + "big?action=delete").status_code == 204
        trash = server.data_dir / "trash"
        assert any(trash.iterdir())
        stop_reading.set()  # now the reader stops reading
        pacer.join(PATIENCE)
        assert _healthy(server)
        wait_for(lambda: not any(trash.iterdir()), "the pinned version's release")
        with pytest.raises(ConnectionResetError):  # cut: reset, not a clean end
            received += len(_read_until_closed(reader))
        reader.close()
        assert received < len(data)
        assert _healthy(server)


@pytest.mark.e2e
def test_kept_alive_and_pipelined_requests_are_served(tmp_path: Path) -> None:
    # A keep-alive longer than the client's patience: the last head's 408 must
    # come from its own deadline (1 s), not from the idle connection's (it
    # came after GUNICORN_KEEPALIVE, 30 s by default, before the fix).
    env = {"GUNICORN_HEADER_TIMEOUT": "1", "GUNICORN_KEEPALIVE": str(int(PATIENCE) * 2)}
    with gunicorn_server(tmp_path, workers=1, threads=1, env=env) as server:
        sock = _connect(server)
        health = b"GET /?action=health HTTP/1.1\r\nHost: x\r\n\r\n"
        sock.sendall(health * 2)  # two requests in one packet
        answer = b""
        while answer.count(b'{"status":"ok"}') < 2:
            answer += sock.recv(65536)
        # Idle on a kept-alive connection is not a stalled head: it is
        # GUNICORN_KEEPALIVE's, and the next request is served.
        time.sleep(1.5)  # longer than the head deadline, not a sync wait
        sock.sendall(health)
        answer = b""
        while b'{"status":"ok"}' not in answer:
            answer += sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 ")
        # A kept-alive connection's next head gets its own deadline.
        sock.sendall(b"GET /?action=health HTTP/1.1\r\n")
        head, _, body = _read_until_closed(sock).decode().partition("\r\n\r\n")
        assert head.startswith("HTTP/1.1 408 ")
        assert body == HEAD_408
        sock.close()


@pytest.mark.e2e
def test_a_graceful_stop_does_not_wait_out_an_idle_kept_alive_connection(
    tmp_path: Path,
) -> None:
    """SIGTERM gives an idle kept-alive connection a short grace (2 s), not the
    rest of its wait: with one open (a proxy's pooled connection), a worker's
    stop waited for the worker's next scan of deadlines, which could be the
    keep-alive's (GUNICORN_KEEPALIVE, 30 s by default) or the connection's
    first head deadline (GUNICORN_HEADER_TIMEOUT, 15 s). Both are set longer
    than our patience here."""
    longer = str(int(PATIENCE) * 2)
    env = {"GUNICORN_KEEPALIVE": longer, "GUNICORN_HEADER_TIMEOUT": longer}
    with gunicorn_server(tmp_path, workers=1, threads=1, env=env) as server:
        sock = _connect(server)
        sock.sendall(b"GET /?action=health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while b'{"status":"ok"}' not in answer:
            answer += sock.recv(65536)
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=PATIENCE) == 0
        assert _read_until_closed(sock) == b""  # closed, with nothing more said
        sock.close()


@pytest.mark.e2e
def test_a_slow_but_steady_body_above_the_floor_is_stored(tmp_path: Path) -> None:
    # 500 bytes every 0.1 s is 10x the floor: only a stall of ~2 s would cut it.
    env = {"MPUFLASK_BODY_MIN_RATE": "500", "MPUFLASK_BODY_RATE_WINDOW": "2"}
    with gunicorn_server(tmp_path, workers=1, threads=2, env=env) as server:
        upload_id = requests.post(server.url + "k?action=mpu-create").json()["uploadId"]
        pieces = [bytes([65 + n % 26]) * 500 for n in range(40)]  # 4 s at 5000 B/s

        def steady() -> Iterator[bytes]:
            for piece in pieces:
                yield piece
                time.sleep(0.1)  # the client's pace, not a sync wait

        answer = requests.put(
            server.url + f"k?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1",
            data=steady(),
            timeout=PATIENCE,
        )
        assert answer.status_code == 200, answer.text
        data = b"".join(pieces)
        assert answer.json() == {"partNumber": 1, "etag": md5(data)}
