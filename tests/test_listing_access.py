"""Listing takes the same auth as every other action: a token's prefix and
actions, each identity its own uploads, and signed URLs for a prefix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from flask import Flask

from mpuflask.rules import PartRef
from mpuflask.signing import sign_command
from mpuflask.signing import sign_url
from mpuflask.storage import HttpMetadata

from .listing_support import ALICE
from .listing_support import BOB
from .listing_support import ROOT
from .listing_support import TOKENS
from .listing_support import keys
from .listing_support import listing


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
