"""Every Python block in docs/ runs, or is marked as a fragment on purpose.

A block runs as it is, in a fresh interpreter in an empty directory with a
data directory of its own; a fragment is one whose fence has
``<!-- fragment: why -->`` on the line before it. The hooks example also has
to refuse what it says it refuses (copied as it was, its ``Forbidden`` was
never imported and answered 500), and the fragment of hook shapes has to
name the real fields.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mpuflask import hooks

DOCS = Path(__file__).resolve().parent.parent / "docs"
_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.M | re.S)
_FRAGMENT = re.compile(r"<!-- fragment: [^>]+ -->\n$")


def python_blocks() -> list[tuple[str, int, str, bool]]:
    """(file, line, code, is a fragment) for every Python block in docs/."""
    found = []
    for path in sorted(DOCS.glob("*.md")):
        text = path.read_text()
        for block in _BLOCK.finditer(text):
            before = text[: block.start()]
            line = before.count("\n") + 1
            fragment = bool(_FRAGMENT.search(before))
            found.append((path.name, line, block.group(1), fragment))
    return found


BLOCKS = python_blocks()
RUNNABLE = [(name, line, code) for name, line, code, fragment in BLOCKS if not fragment]


def test_the_docs_have_python_blocks() -> None:
    assert len(RUNNABLE) >= 4
    assert [(n, f) for n, _, _, f in BLOCKS if f] == [("hooks.md", True)] * 2


@pytest.mark.parametrize(
    ("name", "line", "code"), RUNNABLE, ids=[f"{n}:{line}" for n, line, _ in RUNNABLE]
)
def test_python_block_runs(name: str, line: int, code: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ, "MPUFLASK_DATA_DIR": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"docs/{name}:{line}\n{done.stdout}{done.stderr}"


def _block_with(name: str, needle: str) -> str:
    (code,) = [c for n, _, c, _ in BLOCKS if n == name and needle in c]
    return code


def test_the_hooks_example_refuses_what_it_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPUFLASK_DATA_DIR", str(tmp_path / "data"))
    namespace: dict[str, Any] = {}
    exec(_block_with("hooks.md", "@mpu.validate_part"), namespace)
    client = namespace["app"].test_client()
    refused = client.post("/a.bin?action=mpu-create")
    assert (refused.status_code, refused.text) == (401, "Unauthorized: unknown API key")
    key = {"X-Api-Key": "s3cret"}
    created = client.post("/a.bin?action=mpu-create", headers=key)
    upload_id = created.json["uploadId"]
    big = client.put(
        f"/a.bin?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1",
        headers=key,
        input_stream=io.BytesIO(b"refused before it is read"),
        environ_overrides={"CONTENT_LENGTH": str(101 * 2**20)},
    )
    assert (big.status_code, big.text) == (
        403,
        "uploadPart: parts over 100 MiB are refused (small_parts_only)",
    )
    part = client.put(
        f"/a.bin?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1",
        headers=key,
        data=b"small",
    )
    assert part.status_code == 200


def test_the_hook_shapes_fragment_names_the_real_fields() -> None:
    (shapes,) = [
        c for n, _, c, fragment in BLOCKS if fragment and "class RequestInfo" in c
    ]
    documented: dict[str, list[str]] = {}
    current = ""
    for line in shapes.splitlines():
        if match := re.match(r"class (\w+):", line):
            current = match.group(1)
            documented[current] = []
        elif match := re.match(r"    (\w+): ", line):
            documented[current].append(match.group(1))
    for name, fields in documented.items():
        real = [field.name for field in dataclasses.fields(getattr(hooks, name))]
        properties = [f for f in fields if f not in real]
        assert fields[: len(real)] == real, name
        assert all(
            isinstance(getattr(getattr(hooks, name), f), property) for f in properties
        )


def test_the_event_shapes_fragment_names_the_real_fields() -> None:
    from mpuflask import events

    (shapes,) = [c for n, _, c, fragment in BLOCKS if fragment and "class Event" in c]
    documented: dict[str, list[str]] = {}
    current = ""
    for line in shapes.splitlines():
        if match := re.match(r"class (\w+)[(:]", line):
            current = match.group(1)
            documented[current] = []
        elif match := re.match(r"    (\w+): ", line):
            documented[current].append(match.group(1))
    assert set(documented) >= {"Event", "ObjectPublished", "ObjectDeleted"}
    for name, fields in documented.items():
        cls = getattr(events, name)
        real = {field.name for field in dataclasses.fields(cls)} | {"type"}
        assert set(fields) <= real, (name, set(fields) - real)
