"""``mpuflask ls``, ``uploads`` and ``rm`` against the real server's listing.

tests/client/test_listing.py checks the client against a stand-in with the
documented shape; here the same commands talk to the app itself, so the
shape the server answers and the one the client reads cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import Result
from flask import Flask

from mpuflask.client import Client
from tests.client.wsgi_adapter import BASE
from tests.conftest import Flow

KEYS = ["a.txt", "photos/2024/cat.jpg", "photos/2025/owl.jpg", "photos/index.html"]


def _store(app: Flask) -> None:
    flow = Flow(app.test_client())
    for key in KEYS:
        flow.upload([key.encode()], key=key, **{"Content-Type": "text/plain"})


def test_ls_lists_what_the_server_holds(
    app: Flask, run_cli: Callable[..., Result]
) -> None:
    _store(app)
    result = run_cli("ls", BASE)
    assert result.exit_code == 0, result.output
    assert [line.split()[1:] for line in result.stdout.splitlines()] == [
        [str(len(key)), key] for key in KEYS
    ]
    assert result.stderr == f"4 objects, {sum(map(len, KEYS))} bytes\n"
    result = run_cli("ls", f"{BASE}photos/", "-d", "/", "--page-size", "1")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:2] == [
        f"{'':20}  {'PRE':>12}  photos/2024/",
        f"{'':20}  {'PRE':>12}  photos/2025/",
    ]
    assert lines[2].endswith(f"{17:>12}  photos/index.html")
    assert result.stderr == "1 object, 17 bytes, 2 prefixes\n"
    item = json.loads(run_cli("ls", f"{BASE}a", "--json", "-q").stdout)
    assert item["key"] == "a.txt"
    assert item["httpMetadata"] == {"contentType": "text/plain"}


def test_uploads_lists_and_abort_removes(
    app: Flask, run_cli: Callable[..., Result], mpu: Client
) -> None:
    flow = Flow(app.test_client())
    ids = {f"up/{n}": flow.create(f"up/{n}") for n in range(3)}
    flow.upload([b"x"], key="up/done")
    result = run_cli("uploads", f"{BASE}up/", "--page-size", "2")
    assert result.exit_code == 0, result.output
    assert [line.split()[2:] for line in result.stdout.splitlines()] == [
        [upload_id, key] for key, upload_id in ids.items()
    ]
    assert result.stderr == "3 open uploads\n"
    done = run_cli("abort", f"{BASE}up/0", "--upload-id", ids["up/0"])
    assert done.exit_code == 0, done.output
    assert [u.key for u in mpu.list_uploads(BASE)] == ["up/1", "up/2"]


def test_abort_of_an_upload_not_open_there_aborts_nothing(
    app: Flask, run_cli: Callable[..., Result], mpu: Client, state_dir: Path
) -> None:
    """The server's 204 is the same for any id: a mistyped key or id said
    "aborted" and deleted the resume record of the real upload."""
    upload_id = Flow(app.test_client()).create("up/real.bin")
    state_dir.mkdir(parents=True)
    record = state_dir / "record.json"
    record.write_text(json.dumps({"upload_id": upload_id}))
    for url, given in [(f"{BASE}up/real.bn", upload_id), (f"{BASE}up/real.bin", "X")]:
        result = run_cli("abort", url, "--upload-id", given)
        assert (result.exit_code, result.output) == (
            1,
            f"Error: no upload {given} is open at {url}: it was finished, aborted "
            "or expired, or the key or id is mistyped; nothing was aborted\n",
        )
    assert [u.upload_id for u in mpu.list_uploads(BASE)] == [upload_id]
    assert record.exists()
    done = run_cli("abort", f"{BASE}up/real.bin", "--upload-id", upload_id)
    assert done.exit_code == 0, done.output
    assert list(mpu.list_uploads(BASE)) == []
    assert not record.exists()


def test_rm_then_ls_shows_nothing(app: Flask, run_cli: Callable[..., Result]) -> None:
    _store(app)
    result = run_cli("rm", *[f"{BASE}{key}" for key in KEYS])
    assert result.exit_code == 0, result.output
    result = run_cli("ls", BASE)
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        "",
        "0 objects, 0 bytes\n",
    )
