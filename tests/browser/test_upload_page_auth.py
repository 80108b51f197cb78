"""The upload page with credentials, end to end in headless Chromium against
real gunicorn with MPUFLASK_AUTH_TOKENS: a bearer token typed in (refusals
shown, never retried), and signed URLs from examples/signing_endpoint.py,
whose refusals the page shows too.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
import requests

from tests.servers import Server

from .conftest import MIB
from .conftest import TOKEN
from .conftest import make_file
from .page_support import choose
from .page_support import finish
from .page_support import open_page
from .page_support import upload_key
from .support import access_lines

pytestmark = pytest.mark.e2e


def test_token_typed_in(page: Any, auth_server: Server, tmp_path: Path) -> None:
    """With MPUFLASK_AUTH_TOKENS, the page works once the token is typed in."""
    source = make_file(tmp_path, "secret.bin", 2 * MIB + 5, seed=4)
    creates: list[str] = []
    page.on("request", lambda r: "action=mpu-create" in r.url and creates.append(r.url))
    open_page(page, auth_server.url)
    choose(page, source)

    # No credentials: the server's own 401 text is shown, and not retried.
    page.get_by_role("button", name="Upload", exact=True).click()
    assert finish(page) == "failed"
    assert page.text_content("[role=alert]") == (
        "Upload failed: Unauthorized: send 'Authorization: Bearer <token>' or use a signed URL."
    )
    assert len(creates) == 1

    page.get_by_label("Bearer token").check()
    token = page.get_by_label("Token", exact=True)
    assert token.is_visible()
    page.get_by_role("button", name="Upload", exact=True).click()
    assert page.text_content("[role=alert]") == "Type the token first (Credentials)."

    token.fill("not-the-token")
    page.get_by_role("button", name="Upload", exact=True).click()
    assert finish(page) == "failed"
    assert (
        page.text_content("[role=alert]")
        == "Upload failed: Unauthorized: invalid bearer token."
    )
    assert len(creates) == 2  # a 401 is the server's final word: no retry

    token.fill(TOKEN)
    page.get_by_role("button", name="Upload", exact=True).click()
    assert finish(page) == "done", page.text_content("#error")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    response = requests.get(
        f"{auth_server.url}secret.bin?action=get", headers=headers, timeout=10
    )
    assert response.content == source.read_bytes()
    assert (
        requests.get(f"{auth_server.url}secret.bin?action=get", timeout=10).status_code
        == 401
    )

    # Download with the token: fetched with the header, saved from memory.
    with page.expect_download() as download:
        page.get_by_role("button", name="Download", exact=True).click()
    assert Path(download.value.path()).read_bytes() == source.read_bytes()


def test_signed_urls_from_the_example_endpoint(
    page: Any, auth_server: Server, signing_endpoint: str, tmp_path: Path
) -> None:
    """examples/signing_endpoint.py: log in there, upload and download signed."""
    source = make_file(tmp_path, "signed.bin", 3 * MIB + 1, seed=5)
    page.goto(f"{signing_endpoint}/login")
    page.get_by_label("User").fill("alice")
    page.get_by_label("Password").fill("wonderland")
    page.get_by_role("button", name="Log in").click()
    # The endpoint sends us to the page with itself filled in (#signer=...).
    page.wait_for_selector("html[data-ready=true]")
    assert page.get_by_label("Signed URLs from an endpoint").is_checked()
    assert (
        page.get_by_label("Signing endpoint URL").input_value()
        == f"{signing_endpoint}/sign"
    )

    # The endpoint's policy: alice writes under alice/ only; its text is shown.
    choose(page, source, key="bob/signed.bin")
    page.get_by_role("button", name="Upload", exact=True).click()
    assert finish(page) == "failed"
    assert page.text_content("[role=alert]") == (
        "Upload failed: the signing endpoint refused: "
        "alice may only use keys under 'alice/'."
    )

    upload_key(page).fill("alice/signed.bin")
    page.get_by_role("button", name="Upload", exact=True).click()
    assert finish(page) == "done", page.text_content("#error")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    response = requests.get(
        f"{auth_server.url}alice/signed.bin?action=get", headers=headers, timeout=10
    )
    assert response.content == source.read_bytes()
    # Every API request of the page was a signed URL naming alice.
    actions = Counter(
        parse_qs(urlsplit(line["target"]).query)["action"][0]
        for line in access_lines(auth_server.log)
        if "HeadlessChrome" in line["agent"]
        and line["target"].startswith("/alice/signed.bin?")
        and "X-Mpu-Signature=" in line["target"]
        and "X-Mpu-Identity=alice" in line["target"]
        and line["status"] == "200"
    )
    assert actions == {"mpu-create": 1, "mpu-uploadpart": 4, "mpu-complete": 1}

    with page.expect_download() as download:
        page.get_by_role("button", name="Download", exact=True).click()
    assert Path(download.value.path()).read_bytes() == source.read_bytes()
