"""``ls``, ``uploads`` and ``rm``; ``Client.list_pages``/``list_objects``/``list_uploads``.

The listing actions are answered by :class:`tests.client.listing_wsgi.FakeListing`
in the shape the server documents (R2's list shape; ``mpu-list``), with
paging; ``rm`` runs against the real app.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from typing import Any

import pytest
from click.testing import Result
from flask import Flask

from mpuflask.client import BadListing
from mpuflask.client import Client
from mpuflask.client import ListedObject
from tests.client.listing_wsgi import FakeListing
from tests.client.listing_wsgi import open_upload
from tests.client.listing_wsgi import stored
from tests.client.wsgi_adapter import BASE
from tests.client.wsgi_adapter import WsgiAdapter

KEYS = [
    "a.txt",
    "photos/2024/cat.jpg",
    "photos/2024/dog.jpg",
    "photos/2025/owl.jpg",
    "photos/index.html",
    "videos/cat.mp4",
    "z",
]
MAY_1 = datetime(2024, 5, 1, 12, tzinfo=UTC)


@pytest.fixture
def listing(app: Flask) -> FakeListing:
    fake = FakeListing(
        app.wsgi_app,
        objects=[stored(key, size=len(key), contentType="text/plain") for key in KEYS],
        uploads=[open_upload(f"up/{n}", f"U{n}") for n in range(5)],
        default_limit=3,
    )
    app.wsgi_app = fake  # type: ignore[method-assign]
    return fake


def test_every_page_is_fetched(listing: FakeListing, mpu: Client) -> None:
    found = list(mpu.list_objects(BASE))
    assert [o.key for o in found] == KEYS
    assert found[0] == ListedObject(
        "a.txt",
        5,
        "0123456789abcdef0123456789abcdef",
        MAY_1,
        {"contentType": "text/plain"},
    )
    assert [a.get("cursor") for a in listing.asked] == [
        None,
        "photos/2024/dog.jpg",
        "videos/cat.mp4",
    ]


def test_prefix_delimiter_and_page_size_are_sent(
    listing: FakeListing, mpu: Client
) -> None:
    pages = list(mpu.list_pages(BASE, prefix="photos/", delimiter="/", page_size=2))
    assert [(p.prefixes, [o.key for o in p.objects]) for p in pages] == [
        (["photos/2024/", "photos/2025/"], []),
        ([], ["photos/index.html"]),
    ]
    assert listing.asked[0] == {
        "action": "list",
        "prefix": "photos/",
        "delimiter": "/",
        "limit": "2",
    }


def test_paging_past_1000_keys(app: Flask, mpu: Client) -> None:
    keys = [f"k/{n:05}" for n in range(2500)]
    fake = FakeListing(app.wsgi_app, objects=[stored(k) for k in keys])
    app.wsgi_app = fake  # type: ignore[method-assign]
    assert [o.key for o in mpu.list_objects(BASE, prefix="k/")] == keys
    assert len(fake.asked) == 3
    assert "limit" not in fake.asked[0], "the server's own page size by default"


def test_open_uploads_are_paged(listing: FakeListing, mpu: Client) -> None:
    found = list(mpu.list_uploads(BASE, prefix="up/"))
    assert [(u.key, u.upload_id) for u in found] == [
        (f"up/{n}", f"U{n}") for n in range(5)
    ]
    assert found[0].created == MAY_1
    assert found[0].expires == datetime(2024, 5, 8, 12, tzinfo=UTC)
    assert [a["action"] for a in listing.asked] == ["mpu-list", "mpu-list"]


def broken_listing(app: Flask, body: Any, status: str = "200 OK") -> None:
    def answer(environ: dict[str, Any], start_response: Any) -> Any:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        start_response(status, [("Content-Type", "application/json")])
        return [data]

    app.wsgi_app = answer  # type: ignore[method-assign]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"objects": [], "truncated": True},
            f"list {BASE}: the answer says there is more but gives no cursor",
        ),
        (
            {"objects": [{"key": "a"}], "truncated": False},
            f"list {BASE}: the answer is not a listing (KeyError: 'size'); is this "
            "an mpuflask server?",
        ),
        (
            "<html>hello</html>",
            f"list {BASE}: the answer is not a JSON object",
        ),
        ([1, 2], f"list {BASE}: the answer is not a JSON object"),
    ],
)
def test_a_listing_of_another_shape_is_refused(
    app: Flask, mpu: Client, body: Any, message: str
) -> None:
    broken_listing(app, body)
    with pytest.raises(BadListing) as refused:
        list(mpu.list_objects(BASE))
    assert str(refused.value) == message


def test_a_cursor_that_repeats_is_refused(app: Flask, mpu: Client) -> None:
    broken_listing(app, {"objects": [], "truncated": True, "cursor": "c"})
    with pytest.raises(BadListing) as refused:
        list(mpu.list_objects(BASE))
    assert str(refused.value) == (
        f"list {BASE}: the answer says there is more but gives the same cursor"
    )


def test_ls_prints_every_object(
    listing: FakeListing, run_cli: Callable[..., Result]
) -> None:
    result = run_cli("ls", BASE)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"2024-05-01T12:00:00Z  {len(key):>12}  {key}" for key in KEYS
    ]
    assert result.stderr == f"7 objects, {sum(map(len, KEYS))} bytes\n"


def test_ls_url_path_is_the_prefix_and_delimiter_folds(
    listing: FakeListing, run_cli: Callable[..., Result]
) -> None:
    result = run_cli("ls", f"{BASE}photos/", "-d", "/")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{'':20}  {'PRE':>12}  photos/2024/",
        f"{'':20}  {'PRE':>12}  photos/2025/",
        f"2024-05-01T12:00:00Z  {17:>12}  photos/index.html",
    ]
    assert result.stderr == "1 object, 17 bytes, 2 prefixes\n"
    assert listing.asked[0]["prefix"] == "photos/"


def test_ls_json_lines(listing: FakeListing, run_cli: Callable[..., Result]) -> None:
    result = run_cli("ls", f"{BASE}photos/", "-d", "/", "--json", "-q")
    assert result.exit_code == 0, result.output
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"prefix": "photos/2024/"},
        {"prefix": "photos/2025/"},
        {
            "key": "photos/index.html",
            "size": 17,
            "etag": "0123456789abcdef0123456789abcdef",
            "uploaded": "2024-05-01T12:00:00Z",
            "httpMetadata": {"contentType": "text/plain"},
        },
    ]
    assert result.stderr == ""


def test_ls_a_server_served_under_a_path(
    app: Flask, run_cli: Callable[..., Result]
) -> None:
    """``--prefix``: the URL is the server's root as is (``/mpu/`` via a proxy)."""
    fake = FakeListing(app.wsgi_app, objects=[stored("photos/a")], mount="/mpu/")
    app.wsgi_app = fake  # type: ignore[method-assign]
    result = run_cli("ls", f"{BASE}mpu", "--prefix", "photos/", "-q")
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("  photos/a\n")
    assert fake.asked[0]["prefix"] == "photos/"


def test_ls_escapes_control_characters_in_keys(
    app: Flask, run_cli: Callable[..., Result]
) -> None:
    fake = FakeListing(
        app.wsgi_app, objects=[stored("evil\n2024-05-01T12:00:00Z  1  x")]
    )
    app.wsgi_app = fake  # type: ignore[method-assign]
    result = run_cli("ls", BASE, "-q")
    assert result.stdout.splitlines() == [
        f"2024-05-01T12:00:00Z  {3:>12}  $'evil\\n2024-05-01T12:00:00Z  1  x'"
    ]


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("q/a\nb", "$'q/a\\nb'"),
        ("q/a\\nb", "q/a\\nb"),  # printed alike before: a backslash, then n
        ("q/a\\\nb", "$'q/a\\\\\\nb'"),
        ("$'q/a\\nb'", "$'$\\'q/a\\\\nb\\''"),  # as is, it would pass as quoted
        ("it's", "it's"),
        # $'\xad' is the byte 0xad to bash, not the character: \u00ad is.
        ("a\u00adb", "$'a\\u00adb'"),
    ],
)
def test_no_two_keys_print_alike(
    app: Flask, run_cli: Callable[..., Result], key: str, shown: str
) -> None:
    app.wsgi_app = FakeListing(app.wsgi_app, objects=[stored(key)])  # type: ignore[method-assign]
    result = run_cli("ls", BASE, "-q")
    assert result.stdout.rstrip("\n").split("  ")[-1] == shown


@pytest.mark.parametrize("command", ["ls", "uploads"])
def test_a_prefix_that_is_not_utf8_is_a_usage_error(
    listing: FakeListing, run_cli: Callable[..., Result], command: str
) -> None:
    """``a%ff`` is no prefix: not listed as ``a\ufffd`` (U+FFFD), as unquote
    reads it; ``mpuflask sign`` refuses such a key the same way."""
    result = run_cli(command, f"{BASE}a%ff/")
    assert result.exit_code == 2, result.output
    assert result.output.endswith(
        f"\nError: Invalid value for 'URL': the prefix of '{BASE}a%ff/' "
        "is not UTF-8 once percent-decoded\n"
    )
    assert listing.asked == []


def test_uploads_lists_every_open_upload(
    listing: FakeListing, run_cli: Callable[..., Result]
) -> None:
    result = run_cli("uploads", f"{BASE}up/")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"2024-05-01T12:00:00Z  2024-05-08T12:00:00Z  U{n}  up/{n}" for n in range(5)
    ]
    assert result.stderr == "5 open uploads\n"
    listed = run_cli("uploads", BASE, "--json", "--page-size", "2")
    assert json.loads(listed.stdout.splitlines()[0]) == {
        "key": "up/0",
        "uploadId": "U0",
        "created": "2024-05-01T12:00:00Z",
        "expires": "2024-05-08T12:00:00Z",
    }
    assert [a.get("limit") for a in listing.asked[-3:]] == ["2", "2", "2"]


def test_rm_deletes_objects(
    app: Flask, run_cli: Callable[..., Result], adapter: WsgiAdapter
) -> None:
    client = app.test_client()
    for key in ("a", "b c"):
        upload_id = client.post(f"/{key}?action=mpu-create").json["uploadId"]  # type: ignore[index]
        part = client.put(
            f"/{key}?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1", data=b"x"
        ).json
        assert (
            client.post(
                f"/{key}?action=mpu-complete&uploadId={upload_id}",
                json={"parts": [part]},
            ).status_code
            == 200
        )
    result = run_cli("rm", f"{BASE}a", f"{BASE}b%20c", f"{BASE}never-there")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"deleted {BASE}a\ndeleted {BASE}b%20c\ndeleted {BASE}never-there\n"
    )
    assert client.get("/a?action=get").status_code == 404
    assert client.get("/b c?action=get").status_code == 404
    assert adapter.actions() == ["delete", "delete", "delete"]


def test_rm_stops_at_the_first_refusal(
    app: Flask, run_cli: Callable[..., Result], adapter: WsgiAdapter
) -> None:
    def forbid(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("403 Forbidden", [("Content-Type", "text/plain")])
        return [b"delete: Forbidden: read-only token"]

    app.wsgi_app = forbid  # type: ignore[method-assign]
    result = run_cli("rm", f"{BASE}a", f"{BASE}b")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: delete {BASE}a answered 403: delete: Forbidden: read-only token; "
        "the credentials given may not do this, or not on this key\n"
    )
    assert len(adapter.sent) == 1
