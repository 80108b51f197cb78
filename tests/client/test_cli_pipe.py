"""``mpuflask ls URL | head``: the listing ends quietly when stdout closes.

It printed ``Error: Broken pipe`` and exited 1, a failure's status, which
``set -o pipefail`` scripts take for a failed listing. Now: nothing on
stderr, status 141 (SIGPIPE's), as ``ls | head`` gives; ``download URL - |
head -c 100`` too.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs
from urllib.parse import urlsplit

from tests.client.test_cli_e2e import cli

PAGE = 2000  # lines of about 60 bytes: a page overflows a pipe's buffer
PAGES = 50


class _Listing(BaseHTTPRequestHandler):
    """Pages of objects, each pointing to the next, PAGES in all."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        cursor = parse_qs(urlsplit(self.path).query).get("cursor", ["0"])[0]
        page = int(cursor)
        body = json.dumps(
            {
                "objects": [
                    {
                        "key": f"k/{page:04d}/{n:06d}",
                        "size": 1,
                        "etag": "0" * 32,
                        "uploaded": "2024-05-01T12:00:00.000Z",
                    }
                    for n in range(PAGE)
                ],
                "delimitedPrefixes": [],
                "truncated": page + 1 < PAGES,
                **({"cursor": str(page + 1)} if page + 1 < PAGES else {}),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


#: An object bigger than a pipe's buffer and the client's reads.
BODY = bytes(range(256)) * (32 * 1024)


class _Object(BaseHTTPRequestHandler):
    """GET of any key: BODY, as the 206 of ``bytes=0-``."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(206)
        self.send_header("Content-Range", f"bytes 0-{len(BODY) - 1}/{len(BODY)}")
        self.send_header("ETag", f'"{hashlib.md5(BODY).hexdigest()}"')
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        try:
            self.wfile.write(BODY)
        except OSError:  # the client went away: what this test is about
            pass

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def listing_server(handler: type[BaseHTTPRequestHandler] = _Listing) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_ls_into_a_closed_pipe_ends_quietly() -> None:
    with listing_server() as root:
        with subprocess.Popen(
            cli("ls", root), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        ) as process:
            assert process.stdout is not None and process.stderr is not None
            first = process.stdout.readline()
            process.stdout.close()  # as head does after its lines
            try:
                err = process.stderr.read()
                process.wait(timeout=120)
            finally:
                process.kill()
    assert first.endswith(b"  k/0000/000000\n")
    assert (process.returncode, err) == (141, b"")


def test_download_into_a_closed_pipe_ends_quietly() -> None:
    with listing_server(_Object) as root:
        with subprocess.Popen(
            cli("download", "-q", f"{root}big.bin", "-"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ) as process:
            assert process.stdout is not None and process.stderr is not None
            first = process.stdout.read(100)
            process.stdout.close()  # as head -c 100 does
            try:
                err = process.stderr.read()
                process.wait(timeout=120)
            finally:
                process.kill()
    assert first == BODY[:100]
    assert (process.returncode, err) == (141, b"")
