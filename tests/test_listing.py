"""Listing: ``GET /?action=list`` (objects) and ``GET /?action=mpu-list`` (uploads).

On both stores: R2's list shape, key order, prefixes, delimiters, paging past
1,000 keys, bad parameters refused with nothing changed. Who may list what is
in test_listing_access.py.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mpuflask.rules import PartRef
from mpuflask.storage import HttpMetadata

from .conftest import Flow
from .listing_support import every_page
from .listing_support import keys
from .listing_support import listing
from .listing_support import put


def test_an_empty_store_lists_nothing(client: FlaskClient) -> None:
    assert listing(client) == {
        "objects": [],
        "truncated": False,
        "delimitedPrefixes": [],
    }
    answer = client.get("/?action=mpu-list")
    assert (answer.status_code, answer.json) == (
        200,
        {"uploads": [], "truncated": False},
    )


def test_objects_are_listed_in_key_order_with_r2s_fields(
    client: FlaskClient, flow: Flow
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    etag = put(
        flow,
        "a/b",
        b"hello",
        **{"Content-Type": "text/plain", "Cache-Control": "no-cache"},
    )
    for key in ["é", "Z", "a", "a b", "a/c", "\U0001f600", "~"]:
        put(flow, key)
    answer = listing(client)
    # R2's order: the keys' UTF-8 bytes.
    assert keys(answer) == ["Z", "a", "a b", "a/b", "a/c", "~", "é", "\U0001f600"]
    item = answer["objects"][3]
    uploaded = datetime.fromisoformat(item.pop("uploaded"))
    assert before <= uploaded <= datetime.now(UTC) + timedelta(seconds=5)
    assert item == {
        "key": "a/b",
        "size": 5,
        "etag": etag,
        "httpEtag": f'"{etag}"',
        "httpMetadata": {"contentType": "text/plain", "cacheControl": "no-cache"},
    }
    assert answer["truncated"] is False
    assert answer["delimitedPrefixes"] == []
    assert "cursor" not in answer


def test_a_prefix_selects_keys(client: FlaskClient, flow: Flow) -> None:
    for key in ["photos/a.jpg", "photos/b/c.jpg", "photosx", "photo", "videos/a"]:
        put(flow, key)
    assert keys(listing(client, "&prefix=photos/")) == [
        "photos/a.jpg",
        "photos/b/c.jpg",
    ]
    assert keys(listing(client, "&prefix=photo")) == [
        "photo",
        "photos/a.jpg",
        "photos/b/c.jpg",
        "photosx",
    ]
    assert keys(listing(client, "&prefix=nothing")) == []


def test_a_delimiter_folds_keys_into_prefixes(client: FlaskClient, flow: Flow) -> None:
    for key in ["a", "a/", "a/b", "a/c/d", "a/c/e", "b/x", "c--d--e", "c--f"]:
        put(flow, key)
    answer = listing(client, "&delimiter=/")
    assert keys(answer) == ["a", "c--d--e", "c--f"]
    assert answer["delimitedPrefixes"] == ["a/", "b/"]
    answer = listing(client, "&prefix=a/&delimiter=/")
    assert keys(answer) == ["a/", "a/b"]
    assert answer["delimitedPrefixes"] == ["a/c/"]
    answer = listing(client, "&delimiter=--")
    assert keys(answer) == ["a", "a/", "a/b", "a/c/d", "a/c/e", "b/x"]
    assert answer["delimitedPrefixes"] == ["c--"]


def test_pages_follow_the_cursor_through_objects_and_prefixes(
    client: FlaskClient, flow: Flow
) -> None:
    names = ["a", "b/1", "b/2", "c", "d/1", "d/2/3", "e", "f/1", "g"]
    for key in names:
        put(flow, key)
    first = listing(client, "&delimiter=/&limit=2")
    assert (keys(first), first["delimitedPrefixes"], first["truncated"]) == (
        ["a"],
        ["b/"],
        True,
    )
    assert every_page(client, "&delimiter=/&limit=2") == every_page(
        client, "&delimiter=/&limit=1"
    )
    assert sorted(every_page(client, "&delimiter=/&limit=2")) == [
        "PRE b/",
        "PRE d/",
        "PRE f/",
        "a",
        "c",
        "e",
        "g",
    ]
    assert every_page(client, "&limit=4") == names
    last = listing(client, "&limit=9")
    assert (len(last["objects"]), last["truncated"]) == (9, False)


def test_a_cursor_past_a_folded_prefix_needs_that_delimiter(
    client: FlaskClient, flow: Flow, stored_state: Any
) -> None:
    """A page that ends on a folded prefix ("b/") continues after every key
    under it: read without that delimiter, its cursor would skip b/1 and b/2."""
    for key in ["a", "b/1", "b/2", "c"]:
        put(flow, key)
    first = listing(client, "&delimiter=/&limit=2")
    assert (keys(first), first["delimitedPrefixes"]) == (["a"], ["b/"])
    cursor = first["cursor"]
    assert keys(listing(client, f"&delimiter=/&cursor={cursor}")) == ["c"]
    before = stored_state()
    for query in (f"&cursor={cursor}", f"&delimiter=-&cursor={cursor}"):
        response = client.get(f"/?action=list{query}")
        assert (response.status_code, response.text) == (
            400,
            "list: cursor was given for another delimiter; start again without it",
        )
    assert stored_state() == before
    # A page that ends on a key goes on after it, whatever the delimiter.
    second = listing(client, "&delimiter=/&limit=1")
    assert keys(listing(client, f"&cursor={second['cursor']}")) == ["b/1", "b/2", "c"]


def test_paging_past_1000_keys(
    make_app: Callable[..., Flask], store: str, request: pytest.FixtureRequest
) -> None:
    app = make_app(MPUFLASK_DURABLE=False)
    names = [f"many/{n:04d}" for n in range(1005)]
    fill(app, names, store, request)
    client = app.test_client()
    first = listing(client, "&prefix=many/")
    assert (len(first["objects"]), first["truncated"]) == (1000, True)
    second = listing(client, "&prefix=many/&cursor=" + first["cursor"])
    assert (keys(second), second["truncated"]) == (names[1000:], False)
    assert keys(first) + keys(second) == names
    assert listing(client, "&prefix=many/&delimiter=/")["delimitedPrefixes"] == []
    assert listing(client, "&delimiter=/") == {
        "objects": [],
        "truncated": False,
        "delimitedPrefixes": ["many/"],
    }


def fill(
    app: Flask, names: list[str], store: str, request: pytest.FixtureRequest
) -> None:
    """Store one byte at each of ``names``, the fast way for the store."""
    if store == "s3":  # written straight to the engine, 16 at a time
        engine = request.getfixturevalue("s3_engine")
        bucket = request.getfixturevalue("s3_bucket")
        with ThreadPoolExecutor(16) as pool:
            list(
                pool.map(
                    lambda key: engine.client.put_object(
                        Bucket=bucket, Key=key, Body=b"x"
                    ),
                    names,
                )
            )
        return
    bucket = app.extensions["mpuflask"].bucket
    for key in names:
        upload = bucket.create_multipart_upload(key, HttpMetadata())
        handle = bucket.resume_multipart_upload(key, upload.upload_id)
        part = handle.upload_part(1, [b"x"])
        handle.complete([PartRef(1, part.etag)])


def test_an_overwrite_and_a_delete_show_at_once(
    client: FlaskClient, flow: Flow
) -> None:
    put(flow, "k", b"one")
    etag = put(flow, "k", b"two!")
    assert [(o["key"], o["etag"], o["size"]) for o in listing(client)["objects"]] == [
        ("k", etag, 4)
    ]
    assert client.delete("/k?action=delete").status_code == 204
    assert listing(client)["objects"] == []


CURSOR_TEXT = "cursor is not one this server gave; start again without it"
NOT_UTF8 = "is not UTF-8 once percent-decoded"


def _cursor(fields: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("query", "text"),
    [
        (
            "action=list&limit=0",
            'list: limit must be a whole number from 1 to 1000, not "0"',
        ),
        (
            "action=list&limit=1001",
            'list: limit must be a whole number from 1 to 1000, not "1001"',
        ),
        (
            "action=list&limit=-1",
            'list: limit must be a whole number from 1 to 1000, not "-1"',
        ),
        (
            "action=list&limit=%C2%B2",
            'list: limit must be a whole number from 1 to 1000, not "\\u00b2"',
        ),
        (
            "action=list&limit=",
            'list: limit must be a whole number from 1 to 1000, not ""',
        ),
        (
            f"action=list&limit={'9' * 30}",
            f'list: limit must be a whole number from 1 to 1000, not "{"9" * 20}..."',
        ),
        (
            "action=list&limit=00000",
            'list: limit must be a whole number from 1 to 1000, not "00000"',
        ),
        (
            f"action=list&limit={'0' * 30}1001",
            f'list: limit must be a whole number from 1 to 1000, not "{"0" * 20}..."',
        ),
        ("action=list&cursor=%%%", f"list: {CURSOR_TEXT}"),
        ("action=list&cursor=bm9wZQ", f"list: {CURSOR_TEXT}"),
        (f"action=list&cursor={_cursor(['u', 'k', 'id'])}", f"list: {CURSOR_TEXT}"),
        (f"action=list&cursor={_cursor(['k', 1])}", f"list: {CURSOR_TEXT}"),
        (f"action=list&cursor={'A' * 9000}", f"list: {CURSOR_TEXT}"),
        (f"action=list&prefix={'p' * 1025}", "list: prefix is longer than 1024 bytes"),
        (
            f"action=list&delimiter={'d' * 1025}",
            "list: delimiter is longer than 1024 bytes",
        ),
        (
            "action=mpu-list&limit=x",
            'listMultipartUploads: limit must be a whole number from 1 to 1000, not "x"',
        ),
        (
            f"action=mpu-list&cursor={_cursor(['k', 'a'])}",
            f"listMultipartUploads: {CURSOR_TEXT}",
        ),
        (
            f"action=mpu-list&prefix={'p' * 1025}",
            "listMultipartUploads: prefix is longer than 1024 bytes",
        ),
        # Escapes that do not decode as UTF-8 (the prefix must not be read
        # as their text, "%FF"); a surrogate and a cut character are not UTF-8.
        ("action=list&prefix=%FF", f"list: prefix {NOT_UTF8}"),
        ("action=list&prefix=a%C3", f"list: prefix {NOT_UTF8}"),
        ("action=list&prefix=%ED%A0%80", f"list: prefix {NOT_UTF8}"),
        ("action=list&delimiter=%C3", f"list: delimiter {NOT_UTF8}"),
        ("action=mpu-list&prefix=%FF", f"listMultipartUploads: prefix {NOT_UTF8}"),
    ],
)
def test_bad_parameters_are_refused_and_change_nothing(
    client: FlaskClient, flow: Flow, stored_state: Any, query: str, text: str
) -> None:
    put(flow, "k")
    flow.create("open")
    before = stored_state()
    response = client.get(f"/?{query}")
    assert (response.status_code, response.text) == (400, text)
    assert stored_state() == before


@pytest.mark.parametrize("digits", ["2", "0002", "00002", "0" * 40 + "2"])
def test_a_limit_is_read_as_a_number_leading_zeros_too(
    client: FlaskClient, flow: Flow, digits: str
) -> None:
    """As ``partNumber``: ASCII digits, whatever zeros lead them."""
    for key in ["k0", "k1", "k2"]:
        put(flow, key)
        flow.create(key)
    answer = listing(client, f"&limit={digits}")
    assert (keys(answer), answer["truncated"]) == (["k0", "k1"], True)
    page = client.get(f"/?action=mpu-list&limit={digits}").json
    assert page is not None
    assert ([u["key"] for u in page["uploads"]], page["truncated"]) == (
        ["k0", "k1"],
        True,
    )


def test_a_prefix_is_read_as_utf8_not_as_its_escapes(
    client: FlaskClient, flow: Flow
) -> None:
    """``%FF`` in a prefix is not the text ``%FF``: that is ``%25FF``."""
    put(flow, "%FFx")
    flow.create("%25FFu")
    for query in ("list&prefix=%FF", "list&delimiter=%FF", "mpu-list&prefix=%FF"):
        assert client.get(f"/?action={query}").status_code == 400
    assert keys(listing(client, "&prefix=%25FF")) == ["%FFx"]
    assert listing(client, "&delimiter=%25FF")["delimitedPrefixes"] == ["%FF"]
    answer = client.get("/?action=mpu-list&prefix=%25FF").json
    assert answer is not None
    assert [u["key"] for u in answer["uploads"]] == ["%FFu"]


@pytest.mark.parametrize("action", ["list", "mpu-list"])
def test_listings_are_served_on_root_only(client: FlaskClient, action: str) -> None:
    operation = "list" if action == "list" else "listMultipartUploads"
    response = client.get(f"/photos/?action={action}")
    assert (response.status_code, response.text) == (
        400,
        f"{operation}: listings are served on / only; name the keys with ?prefix= "
        "(for example /?action=list&prefix=videos/)",
    )
    response = client.post(f"/?action={action}")
    assert (response.status_code, response.text) == (
        400,
        f"Unknown action {action} for POST",
    )


def test_mpu_list_shows_the_open_uploads(client: FlaskClient, flow: Flow) -> None:
    ids = {key: flow.create(key) for key in ["b", "a", "c/d", "done", "gone"]}
    second_a = flow.create("a")
    flow.upload([b"x"], key="elsewhere")
    part = flow.part(ids["done"], 1, b"x", key="done")
    flow.complete(ids["done"], [part], key="done")
    assert flow.abort(ids["gone"], key="gone").status_code == 204
    answer = client.get("/?action=mpu-list").json
    assert answer is not None
    expected = sorted(
        [("a", ids["a"]), ("a", second_a), ("b", ids["b"]), ("c/d", ids["c/d"])]
    )
    assert [(u["key"], u["uploadId"]) for u in answer["uploads"]] == expected
    assert answer["truncated"] is False
    first = answer["uploads"][0]
    created = datetime.fromisoformat(first["created"])
    assert datetime.fromisoformat(first["expires"]) - created == timedelta(days=7)
    # Paged, and by prefix.
    seen, cursor = [], ""
    for _ in range(10):
        page = client.get(f"/?action=mpu-list&limit=1{cursor}").json
        assert page is not None and len(page["uploads"]) <= 1
        seen += [(u["key"], u["uploadId"]) for u in page["uploads"]]
        if not page["truncated"]:
            break
        cursor = "&cursor=" + page["cursor"]
    assert seen == expected
    page = client.get("/?action=mpu-list&prefix=c/").json
    assert page is not None
    assert [u["key"] for u in page["uploads"]] == ["c/d"]


def test_expired_uploads_are_not_listed(
    app: Flask, flow: Flow, client: FlaskClient
) -> None:
    flow.create("old")
    bucket = app.extensions["mpuflask"].bucket
    bucket.clock = lambda: datetime.now(UTC) + timedelta(days=8)
    page = client.get("/?action=mpu-list").json
    assert page == {"uploads": [], "truncated": False}
