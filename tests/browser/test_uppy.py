"""Uppy, unchanged, uploading through mpuflask in headless Chromium.

Uppy's own published bundle (uppy@UPPY_VERSION from the npm registry, see
uppy_bundle.py) with its Dashboard and S3 plugin, set up by
examples/uppy/mpuflask-uppy.js (the code docs/browser.md shows), on a page of
another origin than the gunicorn-served mpuflask: every answer Uppy reads
crosses CORS (MPUFLASK_CORS_ORIGINS), the part ETag header above all.
Results are checked on the server: bytes read back, etags, and from gunicorn's
access log which parts the browser stored and how often.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from tests.servers import free_port
from tests.servers import gunicorn_server

from .conftest import MIB
from .conftest import SIGNING_KEY
from .conftest import TOKEN
from .conftest import USERS
from .conftest import make_file
from .support import PAGE_SERVER_ENV
from .support import access_lines
from .support import parts_stored
from .support import settled
from .uppy_bundle import BundleUnavailable
from .uppy_bundle import uppy_dist
from .uppy_support import Site
from .uppy_support import add_and_upload
from .uppy_support import created_id
from .uppy_support import etag_of
from .uppy_support import gate
from .uppy_support import open_uppy
from .uppy_support import part_number
from .uppy_support import part_puts
from .uppy_support import query_of
from .uppy_support import site_app
from .uppy_support import until
from .uppy_support import wait_done
from .uppy_support import wait_parts

pytestmark = pytest.mark.e2e

#: Uppy never cuts parts below 5 MiB: the server's own default minimum.
PART = 5 * MIB
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NO_SUCH_UPLOAD = "listParts: The specified multipart upload does not exist. (10024)"


@pytest.fixture(scope="module")
def uppy_files(
    browser: Any,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """Uppy's bundle from npm, kept in pytest's cache (skips if npm can't)."""
    cache_plugin = getattr(request.config, "cache", None)  # None: -p no:cacheprovider
    if cache_plugin is not None:
        cache = Path(cache_plugin.mkdir("uppy-bundle"))
    else:
        cache = tmp_path_factory.mktemp("uppy-bundle")
    try:
        return uppy_dist(cache)
    except BundleUnavailable as reason:
        pytest.skip(str(reason))


@pytest.fixture(scope="module")
def site(uppy_files: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The page's site on loopback, and a gunicorn granting it CORS.

    mpuflask takes a token (MPUFLASK_AUTH_TOKENS) and signed URLs (the
    signing endpoint at the site's /signer shares its key); its minimum part
    size is the default 5 MiB, Uppy's own floor.
    """
    from examples.signing_endpoint import create_app

    tmp = tmp_path_factory.mktemp("uppy")
    mpuflask_port = free_port()
    signer = create_app(
        {
            "MPUFLASK_URL": f"http://127.0.0.1:{mpuflask_port}/",
            "MPUFLASK_SIGNING_KEY": SIGNING_KEY,
            "SIGNING_USERS": USERS,
            "SIGNING_SESSION_SECRET": "uppy-test-session-secret",
        }
    )
    web = make_server("127.0.0.1", 0, site_app(uppy_files, signer), threaded=True)
    thread = threading.Thread(target=web.serve_forever, daemon=True)
    thread.start()
    origin = f"http://127.0.0.1:{web.server_port}"
    env = {
        **PAGE_SERVER_ENV,
        "MPUFLASK_AUTH_TOKENS": TOKEN,
        "MPUFLASK_SIGNING_KEY": SIGNING_KEY,
        "MPUFLASK_CORS_ORIGINS": origin,
        "MPUFLASK_DURABLE": "false",
    }
    try:
        with gunicorn_server(
            tmp, workers=2, threads=8, env=env, port=mpuflask_port
        ) as server:
            yield Site(origin, server)
    finally:
        web.shutdown()
        web.server_close()
        thread.join()


def read_back(site: Site, key: str) -> requests.Response:
    url = f"{site.server.url}{key}?action=get"
    response = requests.get(url, headers=AUTH, timeout=30)
    assert response.status_code == 200, response.text
    return response


def listparts(site: Site, key: str, upload_id: str) -> requests.Response:
    url = f"{site.server.url}{key}?action=mpu-listparts&uploadId={upload_id}"
    return requests.get(url, headers=AUTH, timeout=10)


def listparts_answer(site: Site, key: str, upload_id: str) -> tuple[int, str]:
    response = listparts(site, key, upload_id)
    return response.status_code, response.text


def test_uploads_big_small_and_empty_files_with_a_token(
    page: Any, site: Site, tmp_path: Path
) -> None:
    """Files of 4 parts, 1 part and 0 bytes, read back byte for byte."""
    big = make_file(tmp_path, "movie.mp4", 3 * PART + MIB + 7, seed=21)
    small = make_file(tmp_path, "note.txt", MIB + 3, seed=22)
    empty = make_file(tmp_path, "empty.bin", 0)
    open_uppy(page, site, token=TOKEN, prefix="t/")
    add_and_upload(page, big, small, empty)
    success = wait_done(page, big.name, small.name, empty.name)

    created = {c["name"]: c for c in page.evaluate("seen.created")}
    assert {name: c["key"] for name, c in created.items()} == {
        "movie.mp4": "t/movie.mp4",
        "note.txt": "t/note.txt",
        "empty.bin": "t/empty.bin",
    }
    for path, parts in [(big, 4), (small, 1), (empty, 1)]:
        key = f"t/{path.name}"
        got = read_back(site, key)
        assert got.content == path.read_bytes(), key
        assert got.headers["ETag"] == etag_of(path.read_bytes(), PART), key
        assert success[path.name] == {
            "location": f"{site.server.url}{key}?action=get",
            "key": key,
            "etag": got.headers["ETag"],
        }
        upload_id = created[path.name]["uploadId"]
        counts = settled(
            lambda: parts_stored(site.server.log, upload_id, agent="HeadlessChrome"),  # noqa: B023
            {n: 1 for n in range(1, parts + 1)},
        )
        assert counts == {n: 1 for n in range(1, parts + 1)}, key
    # The file's type, sent with mpu-create, is the object's.
    assert read_back(site, "t/movie.mp4").headers["Content-Type"] == "video/mp4"
    assert read_back(site, "t/note.txt").headers["Content-Type"].startswith("text/")


def test_pause_and_resume_sends_only_missing_parts(
    page: Any, site: Site, tmp_path: Path
) -> None:
    """Paused with parts 1-2 stored, resumed: listParts finds them, 3-5 are sent."""
    source = make_file(tmp_path, "paused.bin", 4 * PART + 2 * MIB, seed=23)
    held = gate(page, lambda url: part_number(url) > 2)
    puts = part_puts(page)
    open_uppy(page, site, token=TOKEN)
    add_and_upload(page, source)
    wait_parts(page, source.name, 1, 2)
    upload_id = created_id(page, source.name)
    # Parts 3-5 are on their way (held): the pause comes mid-upload.
    until(page, lambda: sorted(part_number(url) for url in held.held) == [3, 4, 5])

    page.evaluate("uppy.pauseResume(uppy.getFiles()[0].id)")
    assert page.evaluate("uppy.getFiles()[0].isPaused") is True
    stored = listparts(site, "paused.bin", upload_id).json()["parts"]
    assert [p["partNumber"] for p in stored] == [1, 2]

    held.opened = True
    page.evaluate("uppy.pauseResume(uppy.getFiles()[0].id)")
    wait_done(page, source.name)

    assert page.evaluate("seen.listed") == [[1, 2]]  # what Uppy's listParts saw
    # Parts 1-2 were sent once; 3-5 twice: held before the pause, sent after it.
    sent = Counter(part_number(url) for url in puts)
    assert sent == {1: 1, 2: 1, 3: 2, 4: 2, 5: 2}
    counts = settled(
        lambda: parts_stored(site.server.log, upload_id, agent="HeadlessChrome"),
        {n: 1 for n in range(1, 6)},
    )
    assert counts == {n: 1 for n in range(1, 6)}  # no part stored twice
    got = read_back(site, "paused.bin")
    assert got.content == source.read_bytes()
    assert got.headers["ETag"] == etag_of(source.read_bytes(), PART)


def aborted(upload_id: str) -> Callable[[Any], bool]:
    """Matches the answer to Uppy's mpu-abort of this upload."""
    return lambda r: "action=mpu-abort" in r.url and f"uploadId={upload_id}" in r.url


def test_cancel_leaves_no_open_upload(page: Any, site: Site, tmp_path: Path) -> None:
    """Cancel with some parts stored and others on the way: both uploads aborted."""
    big = make_file(tmp_path, "big.bin", 2 * PART + 1, seed=24)
    small = make_file(tmp_path, "small.bin", 2 * MIB, seed=25)
    gate(page, lambda url: "/small.bin?" in url or part_number(url) > 1)
    open_uppy(page, site, token=TOKEN)
    with page.expect_request(
        lambda r: "/small.bin?action=mpu-uploadpart" in r.url
    ) as small_put:
        add_and_upload(page, big, small)
    small_id = query_of(small_put.value.url, "uploadId")
    wait_parts(page, big.name, 1)
    big_id = created_id(page, big.name)
    for key, upload_id in [("big.bin", big_id), ("small.bin", small_id)]:
        assert listparts(site, key, upload_id).status_code == 200  # open

    # Waiting in Playwright lets its route handler pass the aborts on.
    with (
        page.expect_response(aborted(big_id)) as big_abort,
        page.expect_response(aborted(small_id)) as small_abort,
    ):
        page.evaluate("uppy.cancelAll()")
    assert (big_abort.value.status, small_abort.value.status) == (204, 204)
    for key, upload_id in [("big.bin", big_id), ("small.bin", small_id)]:
        answer = settled(
            lambda: listparts_answer(site, key, upload_id),  # noqa: B023
            (400, NO_SUCH_UPLOAD),
            timeout=20,
        )
        assert answer == (400, NO_SUCH_UPLOAD), key
        assert not (site.server.data_dir / "uploads" / upload_id).exists()
        gone = requests.get(
            f"{site.server.url}{key}?action=get", headers=AUTH, timeout=10
        )
        assert gone.status_code == 404
    assert page.evaluate("seen.errors") == []
    assert page.evaluate("seen.success") == {}


def test_signed_urls_from_the_example_endpoint(
    page: Any, site: Site, tmp_path: Path
) -> None:
    """signPart and the other callbacks ask examples/signing_endpoint.py."""
    big = make_file(tmp_path, "clip.bin", 2 * PART + 3, seed=26)
    small = make_file(tmp_path, "tiny.bin", 1000, seed=27)
    login = page.request.post(
        f"{site.url}/signer/login",
        form={"user": "alice", "password": "wonderland"},
        max_redirects=0,
    )
    assert login.status == 302
    open_uppy(page, site, signer=f"{site.url}/signer/sign", prefix="alice/")
    add_and_upload(page, big, small)
    wait_done(page, big.name, small.name)
    for path in (big, small):
        got = read_back(site, f"alice/{path.name}")
        assert got.content == path.read_bytes()
        assert got.headers["ETag"] == etag_of(path.read_bytes(), PART)

    # Every request of the page to mpuflask was a URL signed for alice.
    actions = Counter(
        query_of(line["target"], "action")
        for line in access_lines(site.server.log)
        if "HeadlessChrome" in line["agent"]
        and line["target"].startswith(("/alice/clip.bin?", "/alice/tiny.bin?"))
        and "X-Mpu-Signature=" in line["target"]
        and "X-Mpu-Identity=alice" in line["target"]
        and line["status"] == "200"
    )
    assert actions == {"mpu-create": 2, "mpu-uploadpart": 3 + 1, "mpu-complete": 2}

    # The endpoint's policy holds: another user's prefix is refused, its text shown.
    open_uppy(page, site, signer=f"{site.url}/signer/sign", prefix="bob/")
    add_and_upload(page, big)
    page.wait_for_function("seen.errors.length > 0")
    assert page.evaluate("seen.errors") == [
        f"{big.name}: signing mpu-create: alice may only use keys under 'alice/'"
    ]


def test_a_wrong_token_is_shown_and_nothing_stored(
    page: Any, site: Site, tmp_path: Path
) -> None:
    source = make_file(tmp_path, "denied.bin", PART + 1, seed=28)
    open_uppy(page, site, token="wrong")
    add_and_upload(page, source)
    page.wait_for_function("seen.errors.length > 0")
    assert page.evaluate("seen.errors") == [
        "denied.bin: mpu-create: Unauthorized: invalid bearer token"
    ]
    assert page.evaluate("seen.created") == []
    missing = requests.get(
        f"{site.server.url}denied.bin?action=get", headers=AUTH, timeout=10
    )
    assert missing.status_code == 404
