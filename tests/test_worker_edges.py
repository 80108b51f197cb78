"""The edges where we once differed from the Worker, R2 or HTTP (issue 12).

Each case is what Cloudflare's runtime answers the seed Worker (shared/spec,
"Edges observed on Cloudflare's runtime") or, for HTTP itself, what RFC 9110
and 9112 say. Ranges and conditionals (items 4 and 5) are in test_ranges.py;
part bodies (items 3 and 9: Content-Length 0, transfer codings) in
test_worker_edges_bodies.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from .conftest import Flow
from .oracle import md5
from .oracle import multipart_etag
from .worker_edges_support import PARTS


def _uploaded(flow: Flow, key: str = "file.bin") -> tuple[str, list[dict[str, Any]]]:
    upload_id = flow.create(key)
    listed = [flow.part(upload_id, n, data, key) for n, data in enumerate(PARTS, 1)]
    return upload_id, listed


# -- 1. complete with the parts listed out of order ---------------------------------


@pytest.mark.parametrize("order", [[1, 0, 2], [2, 1, 0], [2, 0, 1]])
def test_complete_assembles_by_part_number_whatever_the_order(
    flow: Flow, order: list[int]
) -> None:
    upload_id, listed = _uploaded(flow)
    etag = flow.complete(upload_id, [listed[i] for i in order])
    assert etag == f'"{multipart_etag(PARTS)}"'
    got = flow.get()
    assert (got.status_code, got.data) == (200, b"".join(PARTS))


def test_out_of_order_subset_keeps_only_the_listed_parts(flow: Flow) -> None:
    upload_id = flow.create()
    first = flow.part(upload_id, 1, PARTS[0])
    flow.part(upload_id, 2, b"dropped")
    third = flow.part(upload_id, 3, b"end")
    etag = flow.complete(upload_id, [third, first])
    assert etag == f'"{multipart_etag([PARTS[0], b"end"])}"'
    assert flow.get().data == PARTS[0] + b"end"


@pytest.mark.parametrize("numbers", [[1, 2, 1], [2, 1, 2], [3, 1, 3, 2]])
def test_a_part_listed_twice_stays_refused(
    flow: Flow, stored_state, numbers: list[int]
) -> None:
    upload_id, listed = _uploaded(flow)
    before = stored_state()
    response = flow.complete_raw(upload_id, [listed[n - 1] for n in numbers])
    duplicate = next(n for n in numbers if numbers.count(n) > 1)
    assert (response.status_code, response.text) == (
        400,
        f"completeMultipartUpload: Part number {duplicate} is listed more than "
        "once; each part may appear only once. (10025)",
    )
    assert stored_state() == before
    assert flow.get().status_code == 404


def test_out_of_order_list_still_checks_sizes_by_part_number(
    flow: Flow, stored_state
) -> None:
    """Sizes are checked in part-number order: the short part 3 is last."""
    upload_id, listed = _uploaded(flow)
    response = flow.complete_raw(upload_id, [listed[2], listed[0]])
    assert response.status_code == 200
    upload_id = flow.create("small-first.bin")
    small = flow.part(upload_id, 1, b"short", "small-first.bin")
    big = flow.part(upload_id, 2, PARTS[0], "small-first.bin")
    before = stored_state()
    refused = flow.complete_raw(upload_id, [big, small], "small-first.bin")
    assert (refused.status_code, refused.text) == (
        400,
        "completeMultipartUpload: Your proposed upload is smaller than the "
        "minimum allowed object size. (10011)",
    )
    assert stored_state() == before


# -- 2. partNumber given as "1" or 1.0 ------------------------------------------------


@pytest.mark.parametrize("number", ["1", 1.0, "01", 1e0])
def test_integer_valued_part_numbers_complete(flow: Flow, number: Any) -> None:
    upload_id = flow.create()
    part = flow.part(upload_id, 1, b"payload")
    etag = flow.complete(upload_id, [{"partNumber": number, "etag": part["etag"]}])
    assert etag == f'"{multipart_etag([b"payload"])}"'
    assert flow.get().data == b"payload"


def test_string_and_float_numbers_mix_and_sort(flow: Flow) -> None:
    upload_id, listed = _uploaded(flow)
    parts = [
        {"partNumber": "3", "etag": listed[2]["etag"]},
        {"partNumber": 1.0, "etag": listed[0]["etag"]},
        {"partNumber": 2, "etag": listed[1]["etag"]},
    ]
    assert flow.complete(upload_id, parts) == f'"{multipart_etag(PARTS)}"'


@pytest.mark.parametrize(
    "number",
    [
        1.5,
        "1a",
        True,
        False,
        None,
        "",
        " 1",
        "1 ",
        "+1",
        "-1",
        "1.0",
        "1e0",
        "²",
        "0x1",
        [1],
        {"n": 1},
        float("inf"),
    ],
)
def test_other_part_numbers_stay_refused(flow: Flow, stored_state, number: Any) -> None:
    upload_id = flow.create()
    part = flow.part(upload_id, 1, b"payload")
    before = stored_state()
    response = flow.complete_raw(
        upload_id, [{"partNumber": number, "etag": part["etag"]}]
    )
    assert (response.status_code, response.text) == (
        400,
        'Missing or incomplete body: parts[0] needs an integer "partNumber" and '
        'a string "etag"',
    )
    assert stored_state() == before


@pytest.mark.parametrize(
    ("number", "shown"),
    [
        (0.0, "0"),
        ("0", "0"),
        ("10001", "10001"),
        (10001.0, "10001"),
        ("9" * 5000, "9" * 64 + "..."),
    ],
)
def test_out_of_range_numbers_name_the_value(
    flow: Flow, stored_state, number: Any, shown: str
) -> None:
    upload_id = flow.create()
    flow.part(upload_id, 1, b"payload")
    before = stored_state()
    response = flow.complete_raw(upload_id, [{"partNumber": number, "etag": md5(b"x")}])
    assert (response.status_code, response.text) == (
        400,
        "Part number must be between 1 and 10000 (inclusive). "
        f"Actual value was: {shown}",
    )
    assert stored_state() == before


# -- 6 and 7. keys with a line feed, keys under static/ -----------------------------


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("line%0Afeed", "line\nfeed"),
        ("carriage%0Dreturn", "carriage\rreturn"),
        ("%0A", "\n"),
        ("a%0D%0Ab/%0A", "a\r\nb/\n"),
        ("static/logo.png", "static/logo.png"),
        ("static", "static"),
        ("static/", "static/"),
        ("static/%0Ax", "static/\nx"),
    ],
)
def test_any_key_round_trips(flow: Flow, path: str, key: str) -> None:
    created = flow.client.post(f"/{path}?action=mpu-create")
    assert created.status_code == 200, created.text
    assert created.json["key"] == key
    upload_id = created.json["uploadId"]
    part = flow.part(upload_id, 1, b"bytes of " + key.encode(), key=path)
    flow.complete(upload_id, [part], key=path)
    listed = flow.client.get(f"/{path}?action=mpu-listparts&uploadId={upload_id}")
    assert listed.status_code == 400  # completed: gone
    got = flow.get(path)
    assert (got.status_code, got.data) == (200, b"bytes of " + key.encode())
    head = flow.client.head(f"/{path}?action=get")
    assert head.status_code == 200
    deleted = flow.client.delete(f"/{path}?action=delete")
    assert deleted.status_code == 204
    assert flow.get(path).text == "Object Not Found"


@pytest.mark.parametrize("path", ["line%0Afeed", "static/x"])
def test_seed_texts_apply_to_every_key(flow: Flow, path: str) -> None:
    assert flow.client.get(f"/{path}").text == "Missing action type"
    assert flow.client.get(f"/{path}?action=get").text == "Object Not Found"
    response = flow.client.put(f"/{path}?action=get")
    assert response.text == "Unknown action get for PUT"


# -- 10. the README's API table says what the answers hold ------------------------

README = Path(__file__).resolve().parent.parent / "README.md"


def _readme_members(action: str) -> list[str]:
    """The top-level JSON members of the answer the README's API table shows.

    The answer is the last code span of the row's "does" cell that is a JSON
    object (a request body, shown first, is not an answer).
    """
    row = next(
        line
        for line in README.read_text().splitlines()
        if line.startswith("|") and f"action={action}" in line.split("|")[1]
    )
    shapes = re.findall(r"`(\{[^`]*\})`", row.split("|")[2])
    assert shapes, row
    top_level = re.sub(r"\[.*\]", "", shapes[-1])
    return re.findall(r'"(\w+)"', top_level)


def test_readme_api_table_shows_every_member(flow: Flow) -> None:
    created = flow.client.post("/file.bin?action=mpu-create")
    assert _readme_members("mpu-create") == list(created.json)
    upload_id = created.json["uploadId"]
    part = flow.client.put(
        f"/file.bin?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1",
        data=b"x",
    )
    assert _readme_members("mpu-uploadpart") == list(part.json)
    listed = flow.client.get(f"/file.bin?action=mpu-listparts&uploadId={upload_id}")
    assert _readme_members("mpu-listparts") == list(listed.json)
    assert list(listed.json["parts"][0]) == ["partNumber", "etag", "size"]
    assert '"parts": [{"partNumber", "etag", "size"}, ...]' in README.read_text()


def test_readme_lists_every_deliberate_difference() -> None:
    text = README.read_text()
    table = text[text.index("## Where mpuflask differs") :]
    table = table[: table.index("\n## ")]
    rows = [line for line in table.splitlines() if line.startswith("| ")][1:]
    for case in [
        "key in the path",
        "raw UTF-8 in the request target",
        "the empty key",
        "`partNumber` in the query",
        "abort",
        "part etags",
        "another key",
        "in quotes",
        "chunked part",
        "transfer coding",
        "`HEAD`",
        "`Range`",
        "ranges we ignore",
        "`expires`",
        "`ETag` header on the part answer",
    ]:
        assert any(case in row.split("|")[1] for row in rows), case
    for row in rows:
        assert row.count("|") == 5 and row.split("|")[4].strip(), row  # a reason
