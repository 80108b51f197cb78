"""Hooks loaded from configuration by dotted path (``module:function``)."""

from __future__ import annotations

from typing import Any

from mpuflask.hooks import PartInfo
from mpuflask.hooks import RequestInfo

from .auth_support import AuthFlow
from .conftest import MIN_PART


def test_hooks_from_configuration(make_app: Any, stored_state) -> None:
    app = make_app(
        MPUFLASK_AUTH_HOOKS="tests.test_configured_hooks:header_identity",
        MPUFLASK_PART_VALIDATORS="tests.test_configured_hooks:no_zero_parts",
        MPUFLASK_COMPLETE_VALIDATORS="tests.test_configured_hooks:at_most_one_part",
    )
    client = app.test_client()
    assert client.post("/k?action=mpu-create").status_code == 401
    flow = AuthFlow(client, {"X-Who": "carol"})
    upload_id = flow.req("POST", "/k?action=mpu-create").json["uploadId"]
    response = flow.req(
        "PUT", f"/k?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1", data=b"0"
    )
    assert (response.status_code, response.text) == (
        400,
        "uploadPart: no zeros (no_zero_parts)",
    )
    base = f"/k?uploadId={upload_id}"
    parts = [
        flow.req(
            "PUT", f"{base}&action=mpu-uploadpart&partNumber={n}", data=b"a" * MIN_PART
        ).json
        for n in (1, 2)
    ]
    before = stored_state()
    refused = flow.req("POST", f"{base}&action=mpu-complete", json={"parts": parts})
    assert (refused.status_code, refused.text) == (
        400,
        "completeMultipartUpload: one part at most (at_most_one_part)",
    )
    assert stored_state() == before
    done = flow.req("POST", f"{base}&action=mpu-complete", json={"parts": parts[:1]})
    assert done.status_code == 200


def header_identity(req: RequestInfo) -> str | None:
    return req.headers.get("X-Who")


def no_zero_parts(part: PartInfo) -> Any:
    from mpuflask.validators import PartRefused

    class Check:
        def update(self, chunk: bytes) -> None:
            if chunk.startswith(b"0"):
                raise PartRefused("no zeros", "no_zero_parts")

        def finish(self) -> None:
            pass

    return Check()


def at_most_one_part(done: Any) -> None:
    from mpuflask.validators import CompleteRefused

    if len(done.parts) > 1:
        raise CompleteRefused("one part at most", "at_most_one_part")
