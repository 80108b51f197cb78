"""docs/tour.md cannot rot: every name it gives exists, every Worker line it
quotes is on that line, and its two exercises' solutions (examples/tour/) work.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from .conftest import Flow

ROOT = Path(__file__).resolve().parent.parent
TOUR = (ROOT / "docs" / "tour.md").read_text()
#: Cloudflare's guide, beside the repository (or beside its worktrees' folder).
SEED_GUIDE = next(
    (
        found
        for base in (ROOT.parent, ROOT.parent.parent)
        if (
            found := base / "shared" / "seed" / "r2-multipart-worker-guide.md"
        ).is_file()
    ),
    ROOT.parent / "shared" / "seed" / "r2-multipart-worker-guide.md",
)

DOTTED = sorted(set(re.findall(r"`(mpuflask(?:\.[A-Za-z_]\w*)+)`", TOUR)))
PATHS = sorted(
    set(re.findall(r"`((?:mpuflask|examples|tests|docs)/[\w/.-]+\.\w+)`", TOUR))
)
QUOTES = re.findall(r"line (\d+):\s+`([^`\n]+)`", TOUR)


def _resolve(dotted: str) -> object:
    """The object a dotted name names: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            found = getattr(found, name)
        return found
    raise ModuleNotFoundError(dotted)


def test_the_tour_names_many_things() -> None:
    assert len(DOTTED) > 40
    assert len(QUOTES) > 20
    assert "examples/tour/guests.py" in PATHS


@pytest.mark.parametrize("dotted", DOTTED)
def test_every_name_in_the_tour_exists(dotted: str) -> None:
    _resolve(dotted)


@pytest.mark.parametrize("path", PATHS)
def test_every_file_in_the_tour_exists(path: str) -> None:
    assert (ROOT / path).is_file()


@pytest.mark.skipif(
    not SEED_GUIDE.is_file(), reason="the seed guide is not beside the repository"
)
@pytest.mark.parametrize(("line", "quoted"), QUOTES)
def test_every_quoted_worker_line_is_that_line(line: str, quoted: str) -> None:
    lines = SEED_GUIDE.read_text(encoding="utf-8").splitlines()
    assert quoted in lines[int(line) - 1], lines[int(line) - 1]


# -- the exercises' solutions --------------------------------------------------------


def test_exercise_1_guests_may_read(
    make_app: Callable[..., Flask], stored_state: Callable[[], dict[str, Any]]
) -> None:
    app = make_app(
        MPUFLASK_AUTH_TOKENS="t-admin",
        MPUFLASK_AUTH_HOOKS="examples.tour.guests:guests_may_read",
    )
    client = app.test_client()
    admin = {"Authorization": "Bearer t-admin"}
    upload_id = client.post("/a.bin?action=mpu-create", headers=admin).json["uploadId"]
    base = f"/a.bin?uploadId={upload_id}"
    part = client.put(
        f"{base}&action=mpu-uploadpart&partNumber=1",
        data=b"public bytes",
        headers=admin,
    ).json
    done = client.post(
        f"{base}&action=mpu-complete", json={"parts": [part]}, headers=admin
    )
    assert done.status_code == 200
    assert client.get("/a.bin?action=get").data == b"public bytes"
    assert client.head("/a.bin?action=get").status_code == 200
    before = stored_state()
    for method, action in [("POST", "mpu-create"), ("DELETE", "delete")]:
        response = client.open(f"/a.bin?action={action}", method=method)
        assert (response.status_code, response.text) == (
            401,
            f"Unauthorized: guests may only read, not {action}",
        )
    wrong = client.post("/a.bin?action=mpu-create", headers={"Authorization": "x"})
    assert wrong.status_code == 401
    # Another scheme is no guest: no hook takes it, so the generic 401.
    basic = client.get("/a.bin?action=get", headers={"Authorization": "Basic eDp5"})
    assert (basic.status_code, basic.text) == (
        401,
        "Unauthorized: send 'Authorization: Bearer <token>' or use a signed URL",
    )
    assert stored_state() == before


def test_exercise_2_text_files_are_text(
    make_app: Callable[..., Flask], stored_state: Callable[[], dict[str, Any]]
) -> None:
    app = make_app(
        MPUFLASK_PART_VALIDATORS="examples.tour.text_files:text_files_are_text"
    )
    flow = Flow(app.test_client())
    upload_id = flow.create("notes.txt")
    before = stored_state()
    refused = flow.put_part(upload_id, 1, b"line\n\0binary", key="notes.txt")
    assert (refused.status_code, refused.text) == (
        415,
        "uploadPart: part 1 of a text file holds a NUL byte. (text_files_are_text)",
    )
    assert stored_state() == before
    part = flow.part(upload_id, 1, b"just text\n", key="notes.txt")
    flow.complete(upload_id, [part], key="notes.txt")
    # Other keys' parts pass unread.
    flow.upload([b"\0\1\2"], key="image.bin")
    assert flow.get("image.bin").data == b"\0\1\2"
