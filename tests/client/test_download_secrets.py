"""Download messages name the object's URL without its password.

``user:password@`` in a URL is a credential: every line a download prints
shows the URL as :func:`mpuflask.client.urls.display` does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import Result
from flask import Flask

from mpuflask.client import Client
from mpuflask.client import ClientError
from tests.client.conftest import URL
from tests.client.conftest import write_file
from tests.client.wsgi_adapter import BASE
from tests.client.wsgi_adapter import WsgiAdapter
from tests.client.wsgi_adapter import session_for
from tests.conftest import MIN_PART

SIZE = 3 * 1024 * 1024 // 2
SMALL = ["--min-part-size", str(MIN_PART)]
SECRET_BASE = BASE.replace("://", "://carol:pa55word@")
SECRET_URL = f"{SECRET_BASE}dir/file.bin"


@pytest.fixture
def with_password(
    adapter: WsgiAdapter,
    run_cli: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CLI's URLs with ``carol:pa55word@`` reach the app too (after run_cli's)."""

    def session(*args: Any, **kwargs: Any) -> requests.Session:
        made = session_for(adapter)
        made.mount(SECRET_BASE, adapter)
        return made

    monkeypatch.setattr("mpuflask.client.transport.make_session", session)


@pytest.mark.usefixtures("with_password")
def test_a_replaced_object_is_named_without_the_password(
    app: Flask,
    tmp_path: Path,
    make_client: Callable[..., Client],
    run_cli: Callable[..., Result],
) -> None:
    write_file(tmp_path / "source.bin", SIZE)
    write_file(tmp_path / "other.bin", SIZE, seed=9)
    make_client().upload(tmp_path / "source.bin", URL, min_part_size=MIN_PART)
    inner = app.wsgi_app
    replaced: list[bool] = []

    def replace_after_probe(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("HTTP_RANGE", "bytes=0-0") != "bytes=0-0" and not replaced:
            replaced.append(True)
            make_client().upload(tmp_path / "other.bin", URL, min_part_size=MIN_PART)
        return inner(environ, start_response)

    app.wsgi_app = replace_after_probe  # type: ignore[method-assign]
    result = run_cli("download", SECRET_URL, tmp_path / "out.bin", *SMALL, "-q")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {URL} changed during the download")
    assert "pa55word" not in result.output
    assert not (tmp_path / "out.bin").exists()


def test_a_wrong_range_is_named_without_the_password(
    app: Flask,
    tmp_path: Path,
    adapter: WsgiAdapter,
    make_client: Callable[..., Client],
) -> None:
    session = session_for(adapter)
    session.mount(SECRET_BASE, adapter)
    mpu = make_client(session=session)
    write_file(tmp_path / "source.bin", SIZE)
    mpu.upload(tmp_path / "source.bin", URL, min_part_size=MIN_PART)
    inner = app.wsgi_app

    def shifted(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("HTTP_RANGE", "bytes=0-0") != "bytes=0-0":
            environ["HTTP_RANGE"] = "bytes=1-10"
        return inner(environ, start_response)

    app.wsgi_app = shifted  # type: ignore[method-assign]
    with pytest.raises(ClientError) as failed:
        mpu.download(SECRET_URL, tmp_path / "out.bin", min_part_size=MIN_PART)
    message = str(failed.value)  # of whichever range came back first
    assert message.startswith(f"{URL}: asked for bytes ")
    assert message.endswith(f", got bytes 1-10/{SIZE}")
    assert "pa55word" not in str(failed.value)
