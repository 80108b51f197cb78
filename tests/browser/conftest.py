"""Fixtures of the browser tests: Chromium, the servers, a fresh page per test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import Server
from tests.servers import free_port
from tests.servers import gunicorn_server

from .support import PAGE_SERVER_ENV
from .support import launch
from .support import why_no_browser

MIB = 1024 * 1024
#: The page cuts parts of whole MiB (as the Python client), so tests lower the
#: server's minimum to 1 MiB: a few MiB make several parts.
MIN_PART = MIB
TOKEN = "browser-test-token"
SIGNING_KEY = "browser-test-signing-key"
USERS = '{"alice": "wonderland"}'


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    reason = why_no_browser()
    if reason is not None:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page in a fresh context (its own localStorage), closed after the test."""
    context = browser.new_context(accept_downloads=True)
    context.set_default_timeout(20_000)
    yield context.new_page()
    context.close()


@pytest.fixture(scope="module")
def page_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A gunicorn with the page on and no auth."""
    tmp = tmp_path_factory.mktemp("page-server")
    env = {**PAGE_SERVER_ENV, "MPUFLASK_MIN_PART_SIZE": str(MIN_PART)}
    with gunicorn_server(tmp, workers=2, threads=8, env=env) as server:
        yield server


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A gunicorn with the page on, a bearer token and signed URLs."""
    tmp = tmp_path_factory.mktemp("auth-server")
    env = {
        **PAGE_SERVER_ENV,
        "MPUFLASK_MIN_PART_SIZE": str(MIN_PART),
        "MPUFLASK_AUTH_TOKENS": TOKEN,
        "MPUFLASK_SIGNING_KEY": SIGNING_KEY,
    }
    with gunicorn_server(tmp, workers=2, threads=8, env=env) as server:
        yield server


@pytest.fixture(scope="module")
def signing_endpoint(auth_server: Server) -> Iterator[str]:
    """examples/signing_endpoint.py, served on loopback beside auth_server."""
    from werkzeug.serving import make_server

    from examples.signing_endpoint import create_app

    app = create_app(
        {
            "MPUFLASK_URL": auth_server.url,
            "MPUFLASK_SIGNING_KEY": SIGNING_KEY,
            "SIGNING_USERS": USERS,
            "SIGNING_SESSION_SECRET": "browser-test-session-secret",
        }
    )
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def make_file(folder: Path, name: str, size: int, seed: int = 0) -> Path:
    """A file of ``size`` bytes that differs at every offset and between seeds."""
    import random

    path = folder / name
    path.write_bytes(random.Random(seed).randbytes(size))
    return path
