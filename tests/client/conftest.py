"""Fixtures: the client library wired to the Flask app in-process."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from click.testing import Result
from flask import Flask

from mpuflask.cli import main
from mpuflask.client import Client
from mpuflask.client import RetryPolicy
from tests.client.wsgi_adapter import BASE
from tests.client.wsgi_adapter import WsgiAdapter
from tests.client.wsgi_adapter import session_for
from tests.conftest import MIN_PART

URL = f"{BASE}dir/file.bin"
#: Parts in these tests: two of the server's (lowered) minimum.
PART = 2 * MIN_PART
#: No waiting between tries in tests; the policy's arithmetic has its own tests.
FAST_RETRY = RetryPolicy(attempts=4, base_delay=0.0, max_delay=0.0)


def write_file(path: Path, size: int, seed: int = 0) -> bytes:
    data = random.Random(seed).randbytes(size)
    path.write_bytes(data)
    return data


@pytest.fixture
def store() -> str:
    """The client sees only HTTP: one store is enough (the server suites run both)."""
    return "filesystem"


@pytest.fixture
def adapter(app: Flask) -> WsgiAdapter:
    return WsgiAdapter(app)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def make_client(adapter: WsgiAdapter, state_dir: Path) -> Callable[..., Client]:
    """A Client talking to the app through ``adapter``; settings may be overridden."""

    def make(**settings: Any) -> Client:
        options: dict[str, Any] = {
            "session": session_for(adapter),
            "state_dir": state_dir,
            "retry": FAST_RETRY,
            "concurrency": 4,
            **settings,
        }
        return Client(**options)

    return make


@pytest.fixture
def mpu(make_client: Callable[..., Client]) -> Client:
    return make_client()


@pytest.fixture
def upload_kwargs() -> dict[str, Any]:
    """What every upload in these tests passes: small parts the app accepts."""
    return {"part_size": PART, "min_part_size": MIN_PART}


@pytest.fixture
def run_cli(
    adapter: WsgiAdapter, monkeypatch: pytest.MonkeyPatch, state_dir: Path
) -> Callable[..., Result]:
    """Run ``mpuflask ARGS`` in-process, its requests answered by ``adapter``.

    The CLI builds its own session: ``make_session`` is replaced by one that
    mounts the adapter, so every request the command makes is recorded in
    ``adapter.sent``. Retries wait no time.
    """
    monkeypatch.setattr(
        "mpuflask.client.transport.make_session",
        lambda *args, **kwargs: session_for(adapter),
    )
    monkeypatch.setattr(RetryPolicy, "delay", lambda self, *args, **kwargs: 0.0)
    monkeypatch.setenv("MPUFLASK_STATE_DIR", str(state_dir))
    monkeypatch.delenv("MPUFLASK_TOKEN", raising=False)

    def run(*args: str | Path, input: bytes | str | None = None) -> Result:
        return CliRunner().invoke(main, [str(a) for a in args], input=input)

    return run
