"""Helpers of the Uppy browser tests (test_uppy.py): the page's site, gates, waits.

The site is the page's origin, another than mpuflask's: the test page, the
snippet of docs/browser.md (examples/uppy/mpuflask-uppy.js), Uppy's files
from npm, and examples/signing_endpoint.py mounted at ``/signer``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.wrappers import Request
from werkzeug.wrappers import Response

from tests.oracle import multipart_etag
from tests.oracle import split
from tests.servers import Server

ROOT = Path(__file__).resolve().parents[2]
SNIPPET = ROOT / "examples" / "uppy" / "mpuflask-uppy.js"
PAGE = Path(__file__).with_name("uppy_page.html")


@dataclass
class Site:
    """The page's origin (Uppy, the snippet, the signing endpoint) and mpuflask."""

    url: str  # no trailing "/"
    server: Server


def site_app(dist: Path, signer: Any) -> Any:
    """The page, the snippet, Uppy's files; examples/signing_endpoint.py at /signer."""
    files = {
        "/": (PAGE, "text/html; charset=utf-8"),
        "/mpuflask-uppy.js": (SNIPPET, "text/javascript"),
        "/uppy/uppy.min.mjs": (dist / "uppy.min.mjs", "text/javascript"),
        "/uppy/uppy.min.css": (dist / "uppy.min.css", "text/css"),
    }

    @Request.application  # type: ignore[misc]
    def static(request: Request) -> Response:
        if request.path not in files:
            return Response("not found", 404)
        path, content_type = files[request.path]
        return Response(path.read_bytes(), content_type=content_type)

    return DispatcherMiddleware(static, {"/signer": signer})


class Gate:
    """Holds back the requests ``hold(url)`` picks until opened.

    A held request never reaches the server (to Uppy, a stalled network), so
    the test knows which parts the server has when it pauses or cancels.
    """

    def __init__(self, hold: Callable[[str], bool]) -> None:
        self.hold = hold
        self.opened = False
        self.held: list[str] = []

    def __call__(self, route: Any) -> None:
        if self.opened or not self.hold(route.request.url):
            route.continue_()
        else:
            self.held.append(route.request.url)  # never answered


def query_of(url: str, name: str) -> str:
    return parse_qs(urlsplit(url).query)[name][0]


def part_number(url: str) -> int:
    return int(query_of(url, "partNumber"))


def gate(page: Any, hold: Callable[[str], bool]) -> Gate:
    held = Gate(hold)
    page.route(lambda url: "action=mpu-uploadpart" in url, held)
    return held


def part_puts(page: Any) -> list[str]:
    """The URLs of every part PUT the page starts, in order (kept up to date)."""
    urls: list[str] = []
    page.on(
        "request",
        lambda r: (
            r.method == "PUT" and "mpu-uploadpart" in r.url and urls.append(r.url)
        ),
    )
    return urls


def until(page: Any, condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll ``condition`` (bounded), letting Playwright deliver its events meanwhile.

    Route handlers and request listeners run only while the test is inside a
    Playwright call, so this polls with Playwright's wait rather than sleeping.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        page.wait_for_timeout(20)


def open_uppy(page: Any, site: Site, **settings: str) -> None:
    query = urlencode({"server": site.server.url, **settings})
    page.goto(f"{site.url}/?{query}")
    page.wait_for_selector("html[data-ready=true]")


def add_and_upload(page: Any, *paths: Path) -> None:
    """Choose the files in Uppy's Dashboard, press its upload button."""
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="browse files").click()
    chooser.value.set_files([str(p) for p in paths])
    count = f"{len(paths)} file" + ("s" if len(paths) > 1 else "")
    page.get_by_role("button", name=f"Upload {count}").click()


def wait_done(page: Any, *names: str) -> dict[str, Any]:
    """Wait until Uppy reports every file uploaded, or an error; its results."""
    page.wait_for_function(
        "(names) => seen.errors.length || names.every((n) => n in seen.success)",
        arg=list(names),
    )
    assert page.evaluate("seen.errors") == []
    success: dict[str, Any] = page.evaluate("seen.success")
    return success


def wait_parts(page: Any, name: str, *numbers: int) -> None:
    """Wait until Uppy says these parts of the file ``name`` are uploaded."""
    page.wait_for_function(
        """([name, want]) => want.every(
            (n) => seen.parts.some((p) => p.name === name && p.number === n))""",
        arg=[name, list(numbers)],
    )


def created_id(page: Any, name: str) -> str:
    """The uploadId of the file ``name`` (once Uppy has created its upload)."""
    upload_id: str = page.evaluate(
        "(name) => seen.created.find((c) => c.name === name).uploadId", name
    )
    return upload_id


def etag_of(data: bytes, part_size: int) -> str:
    """R2's object etag for ``data`` cut in parts of ``part_size``: quoted."""
    return f'"{multipart_etag(split(data, part_size))}"'
