"""Objects are served so a browser never runs them on the server's origin.

With the upload page on, an object uploaded as text/html was served inline,
without nosniff or a sandbox: stored XSS against the page's token.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from .conftest import Flow

ACTIVE = [
    "text/html",
    "text/html; charset=utf-8",
    "TEXT/HTML",
    "application/xhtml+xml",
    "image/svg+xml",
    "text/xml",
    "application/xml",
    "application/rss+xml",
    "text/javascript",
    "application/javascript",
    "application/x-javascript",
    "text/xsl",
    "text/html,image/png",
    "nonsense",
]
PASSIVE = [
    "application/octet-stream",
    "image/png",
    "video/mp4",
    "audio/mpeg",
    "text/plain; charset=utf-8",
    "application/pdf",
    "application/json",
]


@pytest.mark.parametrize("web_ui", [True, False])
@pytest.mark.parametrize("content_type", ACTIVE)
def test_active_content_is_sandboxed(
    make_app: Callable[..., Flask], web_ui: bool, content_type: str
) -> None:
    flow = Flow(make_app(MPUFLASK_WEB_UI=web_ui).test_client())
    flow.upload(
        [b"<script>alert(1)</script>"], key="x.html", **{"Content-Type": content_type}
    )
    for method in ("GET", "HEAD"):
        got = flow.client.open("/x.html?action=get", method=method)
        assert got.status_code == 200
        assert got.headers["X-Content-Type-Options"] == "nosniff"
        assert got.headers["Content-Security-Policy"] == "sandbox"


@pytest.mark.parametrize("content_type", PASSIVE)
def test_passive_content_is_served_inline_with_nosniff(
    make_app: Callable[..., Flask], content_type: str
) -> None:
    flow = Flow(make_app(MPUFLASK_WEB_UI=True).test_client())
    flow.upload([b"bytes"], key="x.bin", **{"Content-Type": content_type})
    got = flow.get("x.bin")
    assert got.headers["Content-Type"] == content_type
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in got.headers


def test_ranges_and_not_modified_carry_the_headers_too(flow: Flow) -> None:
    etag = flow.upload([b"<b>hi</b>"], key="p.html", **{"Content-Type": "text/html"})
    ranged = flow.get("p.html", Range="bytes=0-2")
    assert ranged.status_code == 206
    assert ranged.headers["Content-Security-Policy"] == "sandbox"
    assert ranged.headers["X-Content-Type-Options"] == "nosniff"
    cached = flow.get("p.html", **{"If-None-Match": etag})
    assert cached.status_code == 304
    assert cached.headers["X-Content-Type-Options"] == "nosniff"
