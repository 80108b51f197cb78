"""The tests' gunicorn starter (tests/servers.py) never hands a test a
server that is not the one it started.

A free port is free only when chosen: another test worker's server or a
client's connection may take it before gunicorn binds it. Whoever holds it
then answers the start-up poll; the starter must notice and move on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from tests import servers
from tests.servers import PortTaken
from tests.servers import gunicorn_server


class _Impostor(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Length", "8")
        self.end_headers()
        self.wfile.write(b"impostor")

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another HTTP server holds, answering 200 to anything."""
    impostor = ThreadingHTTPServer(("127.0.0.1", 0), _Impostor)
    thread = threading.Thread(target=impostor.serve_forever, daemon=True)
    thread.start()
    yield impostor.server_address[1]
    impostor.shutdown()
    impostor.server_close()


@pytest.mark.e2e
def test_a_given_port_held_by_another_server_is_an_error(
    tmp_path: Path, taken_port: int
) -> None:
    with pytest.raises(PortTaken, match=f"port {taken_port} is taken"):
        with gunicorn_server(tmp_path, workers=1, threads=2, port=taken_port):
            pass  # pragma: no cover - the impostor must not pass for gunicorn


@pytest.mark.e2e
def test_a_chosen_port_taken_meanwhile_is_replaced_by_a_fresh_one(
    tmp_path: Path, taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    choices = iter([taken_port])
    real_free_port = servers.free_port
    monkeypatch.setattr(servers, "free_port", lambda: next(choices, real_free_port()))
    with gunicorn_server(tmp_path, workers=1, threads=2) as server:
        assert not server.url.endswith(f":{taken_port}/")
        answer = requests.get(server.url + "k?action=get", timeout=60)
        assert answer.status_code == 404  # gunicorn's mpuflask, not the impostor
        assert b"impostor" not in answer.content
