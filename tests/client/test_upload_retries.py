"""The library's upload when the server fails or refuses: 503s and 429s
retried, 4xx never, broken connections retried then reported, a lost complete
answer recognised, a wrong object etag reported."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from mpuflask.client import Client
from mpuflask.client import ServerRefused
from mpuflask.client import TransferFailed
from mpuflask.client import VerificationFailed
from tests.client.conftest import URL
from tests.client.middleware import RefusePart
from tests.client.middleware import Unavailable
from tests.client.middleware import answer
from tests.client.middleware import query
from tests.client.upload_support import parts_of
from tests.client.upload_support import source_file
from tests.client.upload_support import stored
from tests.client.wsgi_adapter import WsgiAdapter
from tests.oracle import multipart_etag


@pytest.fixture
def source(tmp_path: Path) -> tuple[Path, bytes]:
    return source_file(tmp_path)


def test_503s_are_retried_until_the_upload_completes(
    app: Flask,
    mpu: Client,
    adapter: WsgiAdapter,
    source: tuple[Path, bytes],
    upload_kwargs: dict[str, Any],
) -> None:
    faults = Unavailable(app.wsgi_app, every=3)
    app.wsgi_app = faults  # type: ignore[method-assign]
    path, data = source
    result = mpu.upload(path, URL, **upload_kwargs)
    assert faults.refused >= 4
    assert stored(app) == data
    assert result.verified


def test_429_with_retry_after_is_retried(
    app: Flask, mpu: Client, source: tuple[Path, bytes], upload_kwargs: dict[str, Any]
) -> None:
    inner = app.wsgi_app
    refused: list[str] = []

    def busy_once(environ: dict[str, Any], start_response: Any) -> Any:
        action = query(environ).get("action", "")
        if action.startswith("mpu-") and action not in refused:
            refused.append(action)
            environ["wsgi.input"].read()
            return answer(
                start_response,
                "429 Too Many Requests",
                "slow down",
                **{"Retry-After": "0"},
            )
        return inner(environ, start_response)

    app.wsgi_app = busy_once  # type: ignore[method-assign]
    mpu.upload(source[0], URL, **upload_kwargs)
    assert refused == ["mpu-create", "mpu-uploadpart", "mpu-complete"]
    assert stored(app) == source[1]


def test_a_400_stops_at_once_with_the_servers_message(
    app: Flask,
    make_client: Callable[..., Client],
    adapter: WsgiAdapter,
    source: tuple[Path, bytes],
    upload_kwargs: dict[str, Any],
) -> None:
    app.wsgi_app = RefusePart(app.wsgi_app, 3)  # type: ignore[method-assign]
    with pytest.raises(ServerRefused) as refused:
        make_client(concurrency=1).upload(source[0], URL, **upload_kwargs)
    assert refused.value.status == 400
    assert refused.value.text == RefusePart.TEXT
    assert RefusePart.TEXT in str(refused.value)
    part_requests = [
        s.part_number for s in adapter.sent if s.action == "mpu-uploadpart"
    ]
    assert part_requests.count(3) == 1, "a 400 is never retried"
    assert part_requests == [1, 2, 3], "no part after the refusal is sent"
    assert "mpu-complete" not in adapter.actions()


@pytest.mark.parametrize(
    "status", ["403 Forbidden", "404 Not Found", "413 Request Entity Too Large"]
)
def test_other_4xx_are_not_retried(
    app: Flask,
    mpu: Client,
    adapter: WsgiAdapter,
    source: tuple[Path, bytes],
    status: str,
) -> None:
    def refuse(environ: dict[str, Any], start_response: Any) -> Any:
        return answer(start_response, status, "no")

    app.wsgi_app = refuse  # type: ignore[method-assign]
    with pytest.raises(ServerRefused) as refused:
        mpu.upload(source[0], URL)
    assert str(refused.value) == f"mpu-create {URL} answered {status[:3]}: no"
    assert len(adapter.sent) == 1


def test_connection_errors_are_retried_and_finally_reported(
    mpu: Client,
    adapter: WsgiAdapter,
    source: tuple[Path, bytes],
    upload_kwargs: dict[str, Any],
) -> None:
    adapter.fail = lambda request: True
    with pytest.raises(TransferFailed) as failed:
        mpu.upload(source[0], URL, **upload_kwargs)
    assert str(failed.value) == (
        f"mpu-create {URL}: the connection to testserver broke (connection reset "
        "by peer) (tried 4 times)"
    )
    assert len(adapter.sent) == 4  # FAST_RETRY.attempts


def test_a_lost_complete_answer_is_recognised(
    app: Flask,
    mpu: Client,
    adapter: WsgiAdapter,
    source: tuple[Path, bytes],
    upload_kwargs: dict[str, Any],
) -> None:
    """The first complete succeeds but its answer is lost: the retry gets 10024."""
    inner = app.wsgi_app
    lost: list[bool] = []

    def lose_first_complete(environ: dict[str, Any], start_response: Any) -> Any:
        if query(environ).get("action") == "mpu-complete" and not lost:
            lost.append(True)
            list(inner(environ, lambda *args: None))
            return answer(start_response, "502 Bad Gateway", "lost")
        return inner(environ, start_response)

    app.wsgi_app = lose_first_complete  # type: ignore[method-assign]
    result = mpu.upload(source[0], URL, **upload_kwargs)
    assert adapter.actions().count("mpu-complete") == 2
    assert result.etag == multipart_etag(parts_of(source[1]))


def test_a_wrong_object_etag_is_reported(
    app: Flask, mpu: Client, source: tuple[Path, bytes], upload_kwargs: dict[str, Any]
) -> None:
    inner = app.wsgi_app

    def wrong_etag(environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            headers = [
                (k, '"' + "0" * 32 + '-11"' if k.lower() == "etag" else v)
                for k, v in headers
            ]
            return start_response(status, headers, *args)

        return inner(environ, start)

    app.wsgi_app = wrong_etag  # type: ignore[method-assign]
    with pytest.raises(
        VerificationFailed, match="the server's object etag is 0{32}-11"
    ):
        mpu.upload(source[0], URL, **upload_kwargs)
