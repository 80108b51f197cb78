"""The examples run as they are: hooks (docs/hooks.md), Uppy's (docs/browser.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from examples.hooks.user_prefix import make_app as make_prefix_app

from .conftest import Flow

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 100


def test_api_key_example(make_app: Any, monkeypatch, stored_state) -> None:
    monkeypatch.setenv(
        "MYCO_API_KEYS", json.dumps({"k-alice": "alice", "k-bob": "bob"})
    )
    app = make_app(MPUFLASK_AUTH_HOOKS="examples.hooks.api_key:require_api_key")
    client = app.test_client()
    refused = client.post("/a.bin?action=mpu-create", headers={"X-Api-Key": "guess"})
    assert (refused.status_code, refused.text) == (
        401,
        "Unauthorized: unknown or missing X-Api-Key",
    )
    assert stored_state() == {}
    created = client.post("/a.bin?action=mpu-create", headers={"X-Api-Key": "k-alice"})
    assert created.status_code == 200
    upload_id = created.json["uploadId"]
    url = f"/a.bin?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1"
    assert client.put(url, data=b"x", headers={"X-Api-Key": "k-bob"}).status_code == 403
    assert (
        client.put(url, data=b"x", headers={"X-Api-Key": "k-alice"}).status_code == 200
    )


def test_user_prefix_example(base_config: dict[str, Any], stored_state) -> None:
    client = make_prefix_app(base_config).test_client()
    alice = {"Authorization": "Bearer t-alice"}
    assert (
        client.post("/alice/cat.mp4?action=mpu-create", headers=alice).status_code
        == 200
    )
    before = stored_state()
    response = client.post("/bob/cat.mp4?action=mpu-create", headers=alice)
    assert (response.status_code, response.text) == (
        403,
        "Forbidden: alice may only use keys under 'alice/'",
    )
    assert client.get("/bob/cat.mp4?action=get", headers=alice).status_code == 403
    assert client.post("/alice/x?action=mpu-create").status_code == 401
    assert stored_state() == before


def test_sniff_filetype_example(make_app: Any, stored_state) -> None:
    app = make_app(MPUFLASK_PART_VALIDATORS="examples.hooks.sniff_filetype:images_only")
    flow = Flow(app.test_client())
    upload_id = flow.create("a.png")
    before = stored_state()
    response = flow.put_part(upload_id, 1, b"<html>not an image</html>", key="a.png")
    assert (response.status_code, response.text) == (
        415,
        "uploadPart: part 1 is not a PNG or JPEG image (images_only)",
    )
    assert stored_state() == before
    assert flow.put_part(upload_id, 1, b"tiny", key="a.png").status_code == 415
    assert flow.put_part(upload_id, 1, PNG, key="a.png").status_code == 200
    # Only part 1 is sniffed.
    assert flow.put_part(upload_id, 2, b"any bytes", key="a.png").status_code == 200


def test_uppy_snippet_in_the_docs_is_the_example_file() -> None:
    """docs/browser.md shows examples/uppy/mpuflask-uppy.js whole, as the tests run it."""
    root = Path(__file__).resolve().parent.parent
    snippet = (root / "examples" / "uppy" / "mpuflask-uppy.js").read_text()
    blocks = re.findall(
        r"^```js\n(.*?)^```$", (root / "docs" / "browser.md").read_text(), re.M | re.S
    )
    assert blocks == [snippet]
