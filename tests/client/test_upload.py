"""The library uploads through the Flask app: parts, resume, credentials
(retries, refusals and the checks of the server's answers are in
test_upload_retries.py)."""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
from flask import Flask

from mpuflask.client import Client
from mpuflask.client import ServerRefused
from mpuflask.client import TransferFailed
from mpuflask.signing import sign_url
from tests.client.conftest import PART
from tests.client.conftest import URL
from tests.client.conftest import write_file
from tests.client.middleware import answer
from tests.client.middleware import query
from tests.client.upload_support import SIZE
from tests.client.upload_support import parts_of
from tests.client.upload_support import source_file
from tests.client.upload_support import stored
from tests.client.wsgi_adapter import BASE
from tests.client.wsgi_adapter import WsgiAdapter
from tests.oracle import multipart_etag


@pytest.fixture
def source(tmp_path: Path) -> tuple[Path, bytes]:
    return source_file(tmp_path)


def interrupted_upload(
    make_client: Callable[..., Client],
    adapter: WsgiAdapter,
    path: Path,
    stored_parts: int,
    **upload: Any,
) -> str:
    """A first run that stores parts 1..stored_parts, then loses the network.

    One part at a time, so which parts arrived is certain. Returns the uploadId.
    """

    def lost(request: Any) -> bool:
        number = parse_qs(urlsplit(request.url).query).get("partNumber", ["0"])[0]
        return int(number) > stored_parts

    adapter.fail = lost
    with pytest.raises(TransferFailed):
        make_client(concurrency=1).upload(path, URL, **upload)
    assert adapter.parts_sent() == list(range(1, stored_parts + 1))
    upload_id = next(
        parse_qs(urlsplit(s.url).query)["uploadId"][0]
        for s in adapter.sent
        if s.part_number
    )
    adapter.fail = lambda request: False
    adapter.sent.clear()
    return upload_id


def test_upload_round_trip_and_verified_etag(
    app: Flask,
    mpu: Client,
    adapter: WsgiAdapter,
    source: tuple[Path, bytes],
    upload_kwargs: dict[str, Any],
) -> None:
    path, data = source
    result = mpu.upload(path, URL, **upload_kwargs)
    assert stored(app) == data
    assert result.etag == multipart_etag(parts_of(data))
    assert (result.parts, result.parts_sent, result.parts_resumed) == (11, 11, 0)
    assert result.verified
    assert sorted(adapter.parts_sent()) == list(range(1, 12))
    sizes = {s.part_number: s.body_size for s in adapter.sent if s.part_number}
    assert sizes[1] == PART and sizes[11] == 123


def test_a_plain_upload_uses_only_the_workers_actions(
    mpu: Client,
    adapter: WsgiAdapter,
    source: tuple[Path, bytes],
    upload_kwargs: dict[str, Any],
) -> None:
    mpu.upload(source[0], URL, **upload_kwargs)
    assert Counter(adapter.actions()) == {
        "mpu-create": 1,
        "mpu-uploadpart": 11,
        "mpu-complete": 1,
    }


def test_an_empty_file_makes_an_empty_object(
    app: Flask, mpu: Client, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    result = mpu.upload(empty, URL)
    assert (result.parts, result.etag) == (0, multipart_etag([]))
    assert stored(app) == b""


def test_content_type_is_guessed_and_kept(
    app: Flask, mpu: Client, tmp_path: Path
) -> None:
    page = tmp_path / "page.html"
    page.write_text("<p>hi</p>")
    mpu.upload(page, f"{BASE}page.html")
    response = app.test_client().get("/page.html?action=get")
    assert response.headers["Content-Type"].startswith("text/html")


def test_resume_sends_only_the_missing_parts(
    app: Flask,
    mpu: Client,
    make_client: Callable[..., Client],
    adapter: WsgiAdapter,
    source: tuple[Path, bytes],
    upload_kwargs: dict[str, Any],
    state_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path, data = source
    interrupted_upload(make_client, adapter, path, 3, **upload_kwargs)
    with caplog.at_level(logging.INFO, "mpuflask.client"):
        result = mpu.upload(path, URL, **upload_kwargs)
    assert sorted(adapter.parts_sent()) == list(range(4, 12))
    assert (result.parts_sent, result.parts_resumed) == (8, 3)
    assert adapter.actions()[0] == "mpu-listparts"
    assert "mpu-create" not in adapter.actions()
    assert "3 of 11 parts already on the server" in caplog.text
    assert stored(app) == data
    assert list(state_dir.iterdir()) == [], "the record is gone once complete"


def test_resume_resends_a_part_whose_etag_differs(
    app: Flask,
    mpu: Client,
    make_client: Callable[..., Client],
    adapter: WsgiAdapter,
    source: tuple[Path, bytes],
    upload_kwargs: dict[str, Any],
) -> None:
    path, data = source
    upload_id = interrupted_upload(make_client, adapter, path, 3, **upload_kwargs)
    tampered = app.test_client().put(
        f"/dir/file.bin?action=mpu-uploadpart&uploadId={upload_id}&partNumber=2",
        data=b"x" * PART,
    )
    assert tampered.status_code == 200
    result = mpu.upload(path, URL, **upload_kwargs)
    assert sorted(adapter.parts_sent()) == [2, *range(4, 12)]
    assert result.parts_resumed == 2
    assert stored(app) == data


def test_a_vanished_upload_starts_over_cleanly(
    app: Flask,
    mpu: Client,
    make_client: Callable[..., Client],
    adapter: WsgiAdapter,
    source: tuple[Path, bytes],
    upload_kwargs: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    path, data = source
    upload_id = interrupted_upload(make_client, adapter, path, 1, **upload_kwargs)
    app.test_client().delete(f"/dir/file.bin?action=mpu-abort&uploadId={upload_id}")
    result = mpu.upload(path, URL, **upload_kwargs)
    assert "the upload no longer exists; starting over" in caplog.text
    assert adapter.actions()[:2] == ["mpu-listparts", "mpu-create"]
    assert result.upload_id != upload_id
    assert (result.parts_sent, result.parts_resumed) == (11, 0)
    assert stored(app) == data


def test_without_listparts_resume_starts_over(
    app: Flask,
    mpu: Client,
    make_client: Callable[..., Client],
    adapter: WsgiAdapter,
    source: tuple[Path, bytes],
    upload_kwargs: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The original Worker has no mpu-listparts: 400 Unknown action means start over."""
    inner = app.wsgi_app

    def worker_like(environ: dict[str, Any], start_response: Any) -> Any:
        if query(environ).get("action") == "mpu-listparts":
            return answer(
                start_response,
                "400 Bad Request",
                "Unknown action mpu-listparts for GET",
            )
        return inner(environ, start_response)

    app.wsgi_app = worker_like  # type: ignore[method-assign]
    path, data = source
    interrupted_upload(make_client, adapter, path, 1, **upload_kwargs)
    result = mpu.upload(path, URL, **upload_kwargs)
    assert "cannot list parts" in caplog.text
    assert adapter.actions()[:3] == ["mpu-listparts", "mpu-abort", "mpu-create"]
    assert result.parts_sent == 11
    assert stored(app) == data


def test_a_changed_file_is_a_new_upload(
    mpu: Client,
    make_client: Callable[..., Client],
    adapter: WsgiAdapter,
    source: tuple[Path, bytes],
    upload_kwargs: dict[str, Any],
) -> None:
    path, _ = source
    interrupted_upload(make_client, adapter, path, 1, **upload_kwargs)
    write_file(path, SIZE, seed=1)
    os.utime(path, ns=(1, 1))  # a new mtime, however coarse the clock
    mpu.upload(path, URL, **upload_kwargs)
    assert "mpu-listparts" not in adapter.actions()
    assert adapter.actions()[0] == "mpu-create"


def test_another_part_size_starts_over(
    mpu: Client,
    make_client: Callable[..., Client],
    adapter: WsgiAdapter,
    source: tuple[Path, bytes],
    upload_kwargs: dict[str, Any],
) -> None:
    path, _ = source
    interrupted_upload(make_client, adapter, path, 1, **upload_kwargs)
    result = mpu.upload(
        path, URL, part_size=3 * PART, min_part_size=upload_kwargs["min_part_size"]
    )
    assert adapter.actions()[:2] == ["mpu-abort", "mpu-create"]
    assert result.parts == 4


def test_no_resume_leaves_no_record(
    make_client: Callable[..., Client],
    adapter: WsgiAdapter,
    source: tuple[Path, bytes],
    upload_kwargs: dict[str, Any],
    state_dir: Path,
) -> None:
    adapter.fail = lambda request: "mpu-uploadpart" in (request.url or "")
    with pytest.raises(TransferFailed):
        make_client().upload(source[0], URL, resume=False, **upload_kwargs)
    assert not state_dir.exists()


def test_token_is_sent_on_every_request(
    make_client: Callable[..., Client],
    adapter: WsgiAdapter,
    source: tuple[Path, bytes],
    upload_kwargs: dict[str, Any],
) -> None:
    make_client(token="s3cr3t").upload(source[0], URL, **upload_kwargs)
    assert {s.headers.get("Authorization") for s in adapter.sent} == {"Bearer s3cr3t"}


def test_token_against_the_servers_bearer_auth(
    make_app: Callable[..., Flask],
    make_client: Callable[..., Client],
    state_dir: Path,
    source: tuple[Path, bytes],
    upload_kwargs: dict[str, Any],
) -> None:
    from tests.client.wsgi_adapter import session_for

    app = make_app(MPUFLASK_AUTH_TOKENS="s3cr3t")
    session = session_for(WsgiAdapter(app))
    with pytest.raises(ServerRefused) as refused:
        make_client(session=session).upload(source[0], URL, **upload_kwargs)
    assert refused.value.status == 401
    make_client(session=session, token="s3cr3t").upload(source[0], URL, **upload_kwargs)
    assert stored(app, Authorization="Bearer s3cr3t") == source[1]


def test_url_signer_signs_every_request(
    make_app: Callable[..., Flask],
    make_client: Callable[..., Client],
    source: tuple[Path, bytes],
    upload_kwargs: dict[str, Any],
) -> None:
    """Signed URLs (the hooks feature) pass through the signer callback."""
    from urllib.parse import parse_qs
    from urllib.parse import unquote
    from urllib.parse import urlsplit

    from tests.client.wsgi_adapter import session_for

    app = make_app(MPUFLASK_SIGNING_KEY="k3y")
    adapter = WsgiAdapter(app)
    signed: list[str] = []

    def signer(method: str, url: str) -> str:
        parts = urlsplit(url)
        params = {k: v[0] for k, v in parse_qs(parts.query).items()}
        signed.append(params["action"])
        return sign_url(
            f"{parts.scheme}://{parts.netloc}/",
            unquote(parts.path[1:]),
            method=method,
            action=params["action"],
            upload_id=params.get("uploadId"),
            part_number=int(params["partNumber"]) if "partNumber" in params else None,
            secret="k3y",
        )

    client = make_client(session=session_for(adapter), url_signer=signer)
    client.upload(source[0], URL, **upload_kwargs)
    assert Counter(signed) == {"mpu-create": 1, "mpu-uploadpart": 11, "mpu-complete": 1}
    assert all("X-Mpu-Signature" in s.url for s in adapter.sent)
    assert {s.status for s in adapter.sent} == {200}
