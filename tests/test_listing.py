"""Listing: ``GET /?action=list`` (objects) and ``GET /?action=mpu-list`` (uploads).

On both stores: R2's list shape, key order, prefixes, delimiters, paging past
1,000 keys, bad parameters refused with nothing changed, and the same auth as
every other action (token prefix and actions, signed URLs, ownership).
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
from urllib.parse import quote
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from mpuflask.rules import PartRef
from mpuflask.signing import sign_command
from mpuflask.signing import sign_url
from mpuflask.storage import HttpMetadata

from .conftest import Flow

TOKENS = json.dumps(
    [
        {"token": "t-root", "identity": "root"},
        {"token": "t-alice", "identity": "alice", "prefix": "alice/"},
        {"token": "t-bob", "identity": "bob", "prefix": "bob/"},
        {"token": "t-reader", "identity": "reader", "actions": ["get"]},
    ]
)
ROOT = {"Authorization": "Bearer t-root"}
ALICE = {"Authorization": "Bearer t-alice"}
BOB = {"Authorization": "Bearer t-bob"}


def listing(client: FlaskClient, query: str = "", **headers: str) -> dict[str, Any]:
    response = client.get(f"/?action=list{query}", headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json  # type: ignore[assignment]
    return answer


def keys(answer: dict[str, Any]) -> list[str]:
    return [item["key"] for item in answer["objects"]]


def every_page(client: FlaskClient, query: str, **headers: str) -> list[str]:
    """Objects and folded prefixes of every page, following the cursor."""
    seen: list[str] = []
    cursor = ""
    for _ in range(1000):
        answer = listing(client, query + cursor, **headers)
        seen += keys(answer) + [f"PRE {p}" for p in answer["delimitedPrefixes"]]
        if not answer["truncated"]:
            return seen
        cursor = "&cursor=" + answer["cursor"]
    raise AssertionError("the cursor never ended")


def put(flow: Flow, key: str, data: bytes = b"x", **headers: str) -> str:
    return flow.upload([data], key=quote(key, safe="/"), **headers).strip('"')


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


@pytest.fixture
def token_app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(MPUFLASK_AUTH_TOKENS=TOKENS)


def test_a_token_prefix_scopes_the_listing(token_app: Flask) -> None:
    client = token_app.test_client()
    for key, token in [
        ("alice/a", ALICE),
        ("alice/d/b", ALICE),
        ("bob/c", BOB),
        ("top", ROOT),
    ]:
        upload_id = client.post(f"/{key}?action=mpu-create", headers=token).json[
            "uploadId"
        ]  # type: ignore[index]
        part = client.put(
            f"/{key}?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1",
            data=b"x",
            headers=token,
        ).json
        done = client.post(
            f"/{key}?action=mpu-complete&uploadId={upload_id}",
            json={"parts": [part]},
            headers=token,
        )
        assert done.status_code == 200
    assert keys(listing(client, **ROOT)) == ["alice/a", "alice/d/b", "bob/c", "top"]
    # No prefix given: the token's own.
    assert keys(listing(client, **ALICE)) == ["alice/a", "alice/d/b"]
    assert keys(listing(client, "&prefix=alice/d", **ALICE)) == ["alice/d/b"]
    answer = listing(client, "&delimiter=/", **ALICE)
    assert (keys(answer), answer["delimitedPrefixes"]) == (["alice/a"], ["alice/d/"])
    for prefix in ["bob/", "ali", "top", "alice"]:
        response = client.get(f"/?action=list&prefix={prefix}", headers=ALICE)
        assert (response.status_code, response.text) == (
            403,
            "Forbidden: this token may only use keys under 'alice/'",
        )
    assert keys(listing(client, **BOB)) == ["bob/c"]


def test_listing_needs_credentials_and_the_action(token_app: Flask) -> None:
    client = token_app.test_client()
    for action in ["list", "mpu-list"]:
        response = client.get(f"/?action={action}")
        assert (response.status_code, response.text) == (
            401,
            "Unauthorized: send 'Authorization: Bearer <token>' or use a signed URL",
        )
        response = client.get(
            f"/?action={action}", headers={"Authorization": "Bearer t-reader"}
        )
        assert (response.status_code, response.text) == (
            403,
            f"Forbidden: this token may not use action {action}",
        )


def test_mpu_list_shows_each_identity_its_own(make_app: Callable[..., Flask]) -> None:
    app = make_app(MPUFLASK_AUTH_TOKENS=TOKENS, MPUFLASK_AUTH_REQUIRED=False)
    client = app.test_client()
    made = {}
    for who, headers in [
        ("alice", ALICE),
        ("bob", BOB),
        ("root", ROOT),
        ("anonymous", {}),
    ]:
        key = f"{who}/file" if who in ("alice", "bob") else f"x/{who}"
        made[who] = client.post(f"/{key}?action=mpu-create", headers=headers).json[
            "uploadId"
        ]  # type: ignore[index]
    for who, headers in [
        ("alice", ALICE),
        ("bob", BOB),
        ("root", ROOT),
        ("anonymous", {}),
    ]:
        page = client.get("/?action=mpu-list", headers=headers).json
        assert page is not None
        assert [u["uploadId"] for u in page["uploads"]] == [made[who]], who
    # A token limited to a prefix lists its uploads there only.
    response = client.get("/?action=mpu-list&prefix=x/", headers=ALICE)
    assert response.status_code == 403


SECRET = "listing-secret"


def _signed(prefix: str, action: str = "list", **kwargs: Any) -> str:
    url = sign_url(
        "http://x/", prefix, method="GET", action=action, secret=SECRET, **kwargs
    )
    parts = urlsplit(url)
    assert parts.path == "/"
    return f"/?{parts.query}"


def test_a_signed_url_lists_its_prefix_only(make_app: Callable[..., Flask]) -> None:
    app = make_app(MPUFLASK_SIGNING_KEY=SECRET)
    client = app.test_client()
    bucket = app.extensions["mpuflask"].bucket
    for key in ["a/1", "a/2", "a/3", "b/1"]:
        upload = bucket.create_multipart_upload(key, HttpMetadata())
        handle = bucket.resume_multipart_upload(key, upload.upload_id)
        handle.complete([PartRef(1, handle.upload_part(1, [b"x"]).etag)])
    url = _signed("a/")
    assert "prefix=a%2F" in url
    answer = client.get(url).json
    assert answer is not None and keys(answer) == ["a/1", "a/2", "a/3"]
    # Paging and folding stay free; the prefix does not.
    page = client.get(url + "&limit=2").json
    assert page is not None and keys(page) == ["a/1", "a/2"]
    rest = client.get(url + "&limit=2&cursor=" + page["cursor"]).json
    assert rest is not None and keys(rest) == ["a/3"]
    for changed in [
        url.replace("prefix=a%2F", "prefix=b%2F"),
        url.replace("prefix=a%2F&", ""),
    ]:
        response = client.get(changed)
        assert (response.status_code, response.text) == (
            403,
            "Forbidden: the URL's signature does not match this request",
        )
    response = client.get(url + "&prefix=b%2F")
    assert (response.status_code, response.text) == (
        403,
        "Forbidden: signed URL with prefix given more than once",
    )
    everything = client.get(_signed("")).json
    assert everything is not None and len(everything["objects"]) == 4
    identity_url = _signed("", action="mpu-list", identity="alice")
    assert client.get(identity_url).json == {"uploads": [], "truncated": False}


def test_mpuflask_sign_signs_a_listing(make_app: Callable[..., Flask]) -> None:
    client = make_app(MPUFLASK_SIGNING_KEY=SECRET).test_client()
    signed = {}
    for args in (["http://x/alice/"], ["http://x/", "--prefix", "bob/"]):
        result = CliRunner().invoke(
            sign_command,
            [*args, "--method", "GET", "--action", "list", "--secret", SECRET],
        )
        assert result.exit_code == 0, result.output
        parts = urlsplit(result.output.strip())
        assert parts.path == "/"
        signed[args[-1]] = f"/?{parts.query}"
    assert "prefix=alice%2F" in signed["http://x/alice/"]
    assert "prefix=bob%2F" in signed["bob/"]
    for path in signed.values():
        assert client.get(path).json == {
            "objects": [],
            "truncated": False,
            "delimitedPrefixes": [],
        }
    refused = CliRunner().invoke(
        sign_command,
        ["http://x/k", "--method", "GET", "--action", "get", "--prefix", "a/"],
        env={"MPUFLASK_SIGNING_KEY": SECRET},
    )
    assert refused.exit_code == 2
    assert "--prefix is for --action list or mpu-list" in refused.output
