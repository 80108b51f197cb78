"""The upload page (GET /), end to end in headless Chromium against real gunicorn.

Each test drives the page as a user would (labels, buttons, keyboard) and
checks the result on the server over HTTP: the bytes read back, the upload
gone after a cancel, and, from gunicorn's access log, which parts the browser
sent and how often. Waits are Playwright's own (on the page's state, its
aria-live text and its <progress>), never fixed sleeps. The page with a
token or signed URLs is in test_upload_page_auth.py.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
import requests

from mpuflask.client.errors import ClientError
from mpuflask.client.parts import choose_part_size
from tests.oracle import etag_from_md5s
from tests.oracle import md5
from tests.servers import Server

from .conftest import MIB
from .conftest import make_file
from .page_support import choose
from .page_support import finish
from .page_support import open_page
from .page_support import upload_key
from .support import parts_stored
from .support import settled

pytestmark = pytest.mark.e2e

RECORDS_JS = """() => Object.entries(localStorage)
    .filter(([name]) => name.startsWith("mpuflask.upload.v1:"))
    .map(([, value]) => JSON.parse(value))"""
NO_SUCH_UPLOAD = "listParts: The specified multipart upload does not exist. (10024)"


def record_announcements(page: Any) -> None:
    """Keep every text the status region announces, in window.announced."""
    page.evaluate(
        """() => {
            window.announced = [];
            const region = document.getElementById("status");
            new MutationObserver(() => window.announced.push(region.textContent))
                .observe(region, {childList: true, characterData: true, subtree: true});
        }"""
    )


def wait_parts_done(page: Any, done: int, count: int) -> None:
    page.wait_for_function(
        "(text) => document.getElementById('parts').textContent === text",
        arg=f"{done} of {count} parts done",
    )


class PartGate:
    """Holds back every part PUT numbered above ``limit`` until opened.

    A held request never reaches the server: to the page it is a stalled
    network, so the test knows exactly which parts the server has when it
    reloads or cancels.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.opened = False
        self.held: list[int] = []

    def __call__(self, route: Any) -> None:
        query = parse_qs(urlsplit(route.request.url).query)
        number = int(query["partNumber"][0])
        if self.opened or number <= self.limit:
            route.continue_()
        else:
            self.held.append(number)  # never answered


def gate_parts(page: Any, limit: int) -> PartGate:
    gate = PartGate(limit)
    page.route(lambda url: "action=mpu-uploadpart" in url, gate)
    return gate


def test_page_md5_and_part_sizes_match_python(page: Any, page_server: Server) -> None:
    """md5.js agrees with hashlib; parts.js with the Python client's rule."""
    open_page(page, page_server.url)
    lengths = [0, 1, 55, 56, 63, 64, 65, 127, 1000, 100_003]
    got = page.evaluate(
        """async (lengths) => {
            const {md5Hex, multipartEtag, Md5, toHex} = await import("/?asset=md5.js");
            const sample = (n) => Uint8Array.from({length: n}, (_, i) => (i * 31 + 7) & 255);
            const whole = lengths.map((n) => md5Hex(sample(n)));
            const pieces = new Md5();  // the same bytes, fed in odd pieces
            const big = sample(100_003);
            for (let o = 0; o < big.length; o += 999) pieces.update(big.subarray(o, o + 999));
            return {whole, pieces: toHex(pieces.digest()), etag: multipartEtag(whole.slice(1, 4))};
        }""",
        lengths,
    )

    def sample(n: int) -> bytes:
        return bytes((i * 31 + 7) & 255 for i in range(n))

    want = [md5(sample(n)) for n in lengths]
    assert got["whole"] == want
    assert got["pieces"] == want[-1]
    assert got["etag"] == etag_from_md5s(want[1:4])

    cases = [
        (size, minimum)
        for minimum in (1024, MIB, 5 * MIB)
        for size in (0, 1, 5 * MIB, 5 * MIB + 1, 10_000 * 5 * MIB, 10_000 * 5 * MIB + 1)
    ] + [
        (123 * 1024**3, 5 * MIB),
        (5 * 1024**4, 5 * MIB),
        (10_000 * 5 * 1024**3 + 1, 5 * MIB),
    ]
    rule = """async ([size, minPartSize]) => {
        const {choosePartSize} = await import("/?asset=parts.js");
        const limits = {minPartSize, maxPartSize: 5 * 1024 ** 3, maxParts: 10000};
        try { return choosePartSize(size, limits); } catch (e) { return "refused"; }
    }"""
    for size, minimum in cases:
        try:
            python: int | str = choose_part_size(size, min_part_size=minimum).part_size
        except ClientError:
            python = "refused"
        assert page.evaluate(rule, [size, minimum]) == python, (size, minimum)


def test_upload_through_the_page_and_read_back(
    page: Any, page_server: Server, tmp_path: Path
) -> None:
    """A 4.5-part file, three parts at a time, started from the keyboard."""
    source = make_file(tmp_path, "holiday.bin", 4 * MIB + 12_345, seed=1)
    open_page(page, page_server.url)
    page.get_by_label("File").set_input_files(str(source))
    key = upload_key(page)
    assert key.input_value() == "holiday.bin"  # the file's name by default
    key.fill("albums/2026/holiday.bin")
    page.get_by_label("Parts sent at once").fill("3")
    with page.expect_response(lambda r: "action=mpu-create" in r.url) as created:
        key.press("Enter")  # submits the form, like the Upload button
    upload_id = created.value.json()["uploadId"]
    assert finish(page) == "done", page.text_content("#error")

    status = page.text_content("#status")
    etag = page.text_content("#result-etag")
    assert status.startswith(
        "Upload complete: albums/2026/holiday.bin, 4.0 MiB in 5 parts"
    )
    assert page.text_content("#parts") == "5 of 5 parts done"
    bar = page.eval_on_selector("#progress", "p => [p.value, p.max]")
    assert bar == [source.stat().st_size, source.stat().st_size]

    # Read it back over HTTP: the same bytes, and the etag the page showed.
    response = requests.get(
        f"{page_server.url}albums/2026/holiday.bin?action=get", timeout=10
    )
    assert response.status_code == 200
    assert response.content == source.read_bytes()
    assert response.headers["etag"] == etag
    # Each part sent once.
    once = {n: 1 for n in range(1, 6)}
    assert settled(lambda: parts_stored(page_server.log, upload_id), once) == once
    assert page.evaluate(RECORDS_JS) == []  # nothing left to resume

    # And through the page's Download button (the key is filled in for us).
    assert (
        page.get_by_label("Key to download").input_value() == "albums/2026/holiday.bin"
    )
    with page.expect_download() as download:
        page.get_by_role("button", name="Download", exact=True).click()
    assert Path(download.value.path()).read_bytes() == source.read_bytes()
    assert download.value.suggested_filename == "holiday.bin"


def test_download_of_a_missing_key_is_announced(page: Any, page_server: Server) -> None:
    open_page(page, page_server.url)
    page.get_by_label("Key to download").fill("no/such/object")
    page.get_by_role("button", name="Download", exact=True).click()
    page.wait_for_function("() => document.getElementById('error').textContent !== ''")
    assert page.text_content("[role=alert]") == "Download failed: Object Not Found"


def test_reload_mid_upload_resumes_without_resending(
    page: Any, page_server: Server, tmp_path: Path
) -> None:
    """Reload with parts 1-4 of 10 stored: only the missing parts are sent after.

    Before resuming, another client replaces part 2 with other bytes of the
    same size and part 3 with a shorter body: the page's MD5 and size checks
    against mpu-listparts must catch both and send those two again.
    """
    source = make_file(tmp_path, "reload.bin", 9 * MIB + 777, seed=2)
    data = source.read_bytes()
    gate = gate_parts(page, limit=4)
    open_page(page, page_server.url)
    choose(page, source, concurrency=2)
    page.get_by_role("button", name="Upload", exact=True).click()
    wait_parts_done(page, 4, 10)
    (record,) = page.evaluate(RECORDS_JS)
    upload_id = record["uploadId"]
    assert record["key"] == "reload.bin" and record["partSize"] == MIB

    page.reload()  # mid-upload: parts 5 and 6 are in flight (held), 7-10 unsent
    page.wait_for_selector("html[data-ready=true]")
    gate.opened = True
    assert set(gate.held) <= {5, 6}
    before = {1: 1, 2: 1, 3: 1, 4: 1}
    assert settled(lambda: parts_stored(page_server.log, upload_id), before) == before
    # The page remembers the unfinished upload...
    assert "reload.bin (9.0 MiB) to key reload.bin" in page.text_content("#unfinished")

    # ...meanwhile someone else changes parts 2 and 3 on the server.
    part_url = f"{page_server.url}reload.bin?action=mpu-uploadpart&uploadId={upload_id}"
    assert requests.put(f"{part_url}&partNumber=2", data=b"\0" * MIB, timeout=10).ok
    assert requests.put(f"{part_url}&partNumber=3", data=b"short", timeout=10).ok

    # Choosing the same file again offers to resume it.
    page.get_by_label("File").set_input_files(str(source))
    assert upload_key(page).input_value() == "reload.bin"
    resume = page.get_by_role("button", name="Resume upload")
    record_announcements(page)
    resume.click()
    assert finish(page) == "done", page.text_content("#error")
    said = page.evaluate("() => window.announced")
    assert (
        said[0] == f"Resuming upload {upload_id}: asking the server which parts it has…"
    )
    assert said[1] == (
        f"Resuming upload {upload_id}: the server holds 4 of 10 parts; "
        "checking them and sending the rest, 2 at a time."
    )
    assert "(2 were already on the server, 8 sent now)" in said[-1]

    response = requests.get(f"{page_server.url}reload.bin?action=get", timeout=10)
    assert response.content == data
    assert response.headers["etag"] == page.text_content("#result-etag")
    # What the browser stored, per part: parts 1 and 4 (intact on the server)
    # once; 2 and 3 again after the check; 5-10 once, after the reload.
    expected = {n: 1 for n in range(1, 11)} | {2: 2, 3: 2}
    by_browser = settled(
        lambda: parts_stored(page_server.log, upload_id, agent="HeadlessChrome"),
        expected,
    )
    assert by_browser == expected
    assert page.evaluate(RECORDS_JS) == []
    assert page.locator("#unfinished-section").is_hidden()


def test_cancel_aborts_the_upload_on_the_server(
    page: Any, page_server: Server, tmp_path: Path
) -> None:
    source = make_file(tmp_path, "cancel.bin", 6 * MIB, seed=3)
    gate_parts(page, limit=2)
    open_page(page, page_server.url)
    choose(page, source, concurrency=2)
    page.get_by_role("button", name="Upload", exact=True).click()
    wait_parts_done(page, 2, 6)
    (record,) = page.evaluate(RECORDS_JS)
    upload_id = record["uploadId"]
    listparts = f"{page_server.url}cancel.bin?action=mpu-listparts&uploadId={upload_id}"
    assert [
        p["partNumber"] for p in requests.get(listparts, timeout=10).json()["parts"]
    ] == [1, 2]

    # Keyboard: while it runs, focus is on Cancel; Enter presses it.
    assert page.evaluate("document.activeElement.id") == "cancel"
    page.keyboard.press("Enter")
    page.wait_for_function(
        "(text) => document.getElementById('status').textContent === text",
        arg=f"Cancelled: upload {upload_id} is aborted on the server and its parts discarded.",
    )
    assert finish(page) == "cancelled"
    gone = requests.get(listparts, timeout=10)
    assert (gone.status_code, gone.text) == (400, NO_SUCH_UPLOAD)
    assert page.evaluate(RECORDS_JS) == []
    assert page.evaluate("document.activeElement.id") == "start"


def test_failed_parts_are_retried_with_backoff(
    page: Any, page_server: Server, tmp_path: Path
) -> None:
    """503, 429 (Retry-After) and a dropped connection are tried again."""
    source = make_file(tmp_path, "flaky.bin", 4 * MIB, seed=6)
    failures = {2: "503", 3: "429", 4: "reset"}
    tries: Counter[int] = Counter()

    def flaky(route: Any) -> None:
        number = int(parse_qs(urlsplit(route.request.url).query)["partNumber"][0])
        tries[number] += 1
        failure = failures.get(number) if tries[number] == 1 else None
        if failure == "503":
            route.fulfill(status=503, body="Service Unavailable: try later")
        elif failure == "429":
            route.fulfill(status=429, headers={"Retry-After": "0"}, body="Slow down")
        elif failure == "reset":
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(lambda url: "action=mpu-uploadpart" in url, flaky)
    open_page(page, page_server.url)
    record_announcements(page)
    choose(page, source, concurrency=1)
    page.get_by_role("button", name="Upload", exact=True).click()
    assert finish(page) == "done", page.text_content("#error")
    assert tries == {1: 1, 2: 2, 3: 2, 4: 2}
    said = "\n".join(page.evaluate("() => window.announced"))
    assert "Part 2: Service Unavailable: try later; trying again in" in said
    assert "Part 3: Slow down; trying again in 0.0 s (attempt 2)." in said
    assert "Part 4: network error on PUT /flaky.bin; trying again in" in said
    response = requests.get(f"{page_server.url}flaky.bin?action=get", timeout=10)
    assert response.content == source.read_bytes()


def test_drop_an_empty_file(page: Any, page_server: Server) -> None:
    """A file dropped on the drop zone; an empty one makes an empty object."""
    open_page(page, page_server.url)
    page.evaluate(
        """() => {
            const data = new DataTransfer();
            data.items.add(new File([], "empty.txt", {type: "text/plain"}));
            document.getElementById("dropzone").dispatchEvent(
                new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
        }"""
    )
    assert upload_key(page).input_value() == "empty.txt"
    assert page.text_content("#status") == "empty.txt chosen, 0 bytes."
    page.get_by_role("button", name="Upload", exact=True).click()
    assert finish(page) == "done", page.text_content("#error")
    empty_etag = "d41d8cd98f00b204e9800998ecf8427e-0"  # md5 of no part md5s, "-0"
    assert page.text_content("#result-etag") == f'"{empty_etag}"'
    response = requests.get(f"{page_server.url}empty.txt?action=get", timeout=10)
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["etag"] == f'"{empty_etag}"'
    assert response.headers["content-type"] == "text/plain"
    assert page.eval_on_selector("#progress", "p => p.value === p.max")
