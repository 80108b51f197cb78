"""Operations: request ids, structured logs, health, metrics, configuration."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest

from mpuflask import create_app
from mpuflask.config import ConfigError
from mpuflask.observability import JsonFormatter
from mpuflask.observability import RequestIdFilter

from .conftest import Flow


def test_request_id_is_returned_or_made(client) -> None:
    given = client.get("/k?action=get", headers={"X-Request-Id": "trace-42"})
    assert given.headers["X-Request-Id"] == "trace-42"
    made = client.get("/k?action=get")
    assert len(made.headers["X-Request-Id"]) == 32
    insane = client.get("/k?action=get", headers={"X-Request-Id": "bad id\u00e9" * 40})
    assert insane.headers["X-Request-Id"] != "bad id"
    assert len(insane.headers["X-Request-Id"]) == 32


def test_access_log_line_is_structured(client, caplog) -> None:
    handler_filter = RequestIdFilter()
    with caplog.at_level(logging.INFO, logger="mpuflask.access"):
        client.post("/k?action=mpu-create", headers={"X-Request-Id": "r-1"})
    record = next(r for r in caplog.records if r.name == "mpuflask.access")
    handler_filter.filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "r-1"
    assert line["action"] == "mpu-create"
    assert line["status"] == 200
    assert line["message"] == "POST mpu-create /k -> 200"


def test_health(client) -> None:
    response = client.get("/?action=health")
    assert (response.status_code, response.json) == (200, {"status": "ok"})


def test_health_reports_a_broken_store(app, data_dir: Path) -> None:
    shutil.rmtree(data_dir / "objects")
    (data_dir / "objects").write_text("not a directory")
    response = app.test_client().get("/?action=health")
    assert (response.status_code, response.json) == (503, {"status": "unavailable"})


def test_service_endpoints_need_no_credentials_and_only_live_on_root(
    make_app: Any,
) -> None:
    client = make_app(MPUFLASK_AUTH_TOKENS="tok").test_client()
    assert client.get("/?action=health").status_code == 200
    assert client.get("/?action=metrics").status_code == 200
    # On any other path they are not ours: keys are the user's.
    assert client.get("/x?action=health").status_code == 401
    open_client = make_app().test_client()
    response = open_client.get("/x?action=health")
    assert (response.status_code, response.text) == (
        400,
        "Unknown action health for GET",
    )


def test_metrics_count_requests_bytes_and_rejections(make_app: Any) -> None:
    app = make_app(MPUFLASK_PART_CONTENT_TYPES="application/octet-stream")
    flow = Flow(app.test_client())
    upload_id = flow.create()
    flow.part(upload_id, 1, b"abc")
    refused = flow.client.put(
        f"/file.bin?action=mpu-uploadpart&uploadId={upload_id}&partNumber=2",
        data=b"text",
        content_type="text/plain",
    )
    assert refused.status_code == 415
    text = flow.client.get("/?action=metrics").text
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("mpuflask_")
    }
    assert (
        samples[
            'mpuflask_requests_total{action="mpu-create",method="POST",status="200"}'
        ]
        == 1
    )
    assert (
        samples[
            'mpuflask_requests_total{action="mpu-uploadpart",method="PUT",status="415"}'
        ]
        == 1
    )
    assert samples["mpuflask_received_bytes_total"] == 3
    assert (
        samples['mpuflask_hook_rejections_total{moment="validate_part",status="415"}']
        == 1
    )
    assert samples["mpuflask_uploads_in_progress"] == 1
    assert (
        samples['mpuflask_request_duration_seconds_count{action="mpu-uploadpart"}'] == 2
    )


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        (
            "MPUFLASK_MIN_PART_SIZE",
            0,
            "MPUFLASK_MIN_PART_SIZE must be an integer from 1 to 10^15, not 0",
        ),
        (
            "MPUFLASK_CHUNK_SIZE",
            "big",
            "MPUFLASK_CHUNK_SIZE must be an integer from 1 to 67108864, not 'big'",
        ),
        (
            "MPUFLASK_DURABLE",
            "ja",
            "MPUFLASK_DURABLE must be true or false (or 1/0, yes/no, on/off), not 'ja'",
        ),
        (
            "MPUFLASK_STORE",
            "tape",
            "MPUFLASK_STORE must be filesystem or s3, not 'tape'",
        ),
    ],
)
def test_bad_settings_fail_at_start(tmp_path: Path, setting, value, message) -> None:
    with pytest.raises(ConfigError) as raised:
        create_app({"MPUFLASK_DATA_DIR": str(tmp_path), setting: value})
    assert str(raised.value) == message


def test_settings_from_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MPUFLASK_DATA_DIR", str(tmp_path / "env-data"))
    monkeypatch.setenv("MPUFLASK_MIN_PART_SIZE", "2048")
    monkeypatch.setenv("MPUFLASK_DURABLE", "false")
    app = create_app({"MPUFLASK_DURABLE": True})
    assert app.config["MPUFLASK_MIN_PART_SIZE"] == 2048
    assert app.config["MPUFLASK_DURABLE"] is True  # the mapping wins over env
    assert (tmp_path / "env-data" / "uploads").is_dir()
