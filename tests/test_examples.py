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


def test_webhook_receiver_example_checks_signatures_and_drops_duplicates(
    tmp_path: Path, capsys: Any
) -> None:
    from examples.webhook_receiver import create_app as make_receiver
    from mpuflask.events import sign_webhook

    receiver = make_receiver("s3cret", str(tmp_path / "events.sqlite3")).test_client()
    body = json.dumps(
        {"id": "e1", "type": "object-published", "key": "k", "etag": "abc-1"}
    ).encode()
    headers = {"X-Mpuflask-Signature": sign_webhook(body, "s3cret")}
    for _ in range(2):  # the same event delivered twice: handled once
        answer = receiver.post("/hooks/mpuflask", data=body, headers=headers)
        assert answer.status_code == 204
    assert capsys.readouterr().out == "object-published k abc-1\n"
    forged = receiver.post(
        "/hooks/mpuflask",
        data=body.replace(b"abc-1", b"abc-2"),
        headers=headers,
    )
    assert (forged.status_code, forged.text) == (
        400,
        "refused: no v1 signature matches the body and the secret\n",
    )
    assert capsys.readouterr().out == ""


def test_webhook_receiver_example_in_the_docs_is_the_example_file() -> None:
    root = Path(__file__).resolve().parent.parent
    example = (root / "examples" / "webhook_receiver.py").read_text()
    code = example.split('"""', 2)[2].lstrip("\n")
    blocks = re.findall(
        r"^```python\n(.*?)^```$", (root / "docs" / "hooks.md").read_text(), re.M | re.S
    )
    assert code in blocks, "docs/hooks.md must show examples/webhook_receiver.py"
