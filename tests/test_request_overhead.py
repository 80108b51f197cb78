"""gunicorn and the metrics do no per-request work nobody reads (issue 16)."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from mpuflask.gunicorn_logging import Logger


def _logger(level: int, built: list[Any]) -> Logger:
    log: Logger = Logger.__new__(Logger)
    log.access_log = logging.getLogger(f"test.gunicorn.access.{level}")
    log.access_log.setLevel(level)
    log.access_log.propagate = False
    # As gunicorn.conf.py configures it: a logconfig_dict, no access log file.
    log.cfg = SimpleNamespace(
        accesslog=None,
        logconfig=None,
        logconfig_dict={"version": 1},
        logconfig_json=None,
        syslog=False,
        disable_redirect_access_to_syslog=False,
        access_log_format="%(s)s",
    )

    def atoms(*args: Any) -> dict[str, str]:
        built.append(args)
        return {"s": "200"}

    log.atoms = atoms  # type: ignore[method-assign]
    return log


@pytest.mark.parametrize(
    ("level", "builds"), [(logging.WARNING, False), (logging.INFO, True)]
)
def test_access_fields_are_built_only_for_an_access_log_that_writes(
    level: int, builds: bool
) -> None:
    built: list[Any] = []
    _logger(level, built).access(object(), object(), {}, 0.001)
    assert bool(built) is builds


def test_metrics_in_multi_process_mode_ask_no_pid_per_request(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """prometheus_client's multi-process values called os.getpid() per inc()."""
    import os

    from prometheus_client import values

    from mpuflask.observability import cheap_multiprocess_values

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue())
    cheap_multiprocess_values()
    value = values.ValueClass("counter", "c", "c_total", (), (), "help")
    calls: list[int] = []
    real = os.getpid
    monkeypatch.setattr(os, "getpid", lambda: calls.append(1) or real())
    for _ in range(5):
        value.inc(1)
    assert calls == []
    assert value.get() == 5
    # A forked child still gets its own files: its pid is refreshed at fork.
    monkeypatch.setattr(os, "getpid", real)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        value.inc(1)
        os.write(write_end, str(value.get()).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read_end, 100) == b"1.0"  # a fresh file, not the parent's 5
    os.close(read_end)
    os.close(write_end)


def test_the_server_limits_malloc_arenas_before_its_threads_start(
    tmp_path: Any,
) -> None:
    import subprocess
    import sys

    from mpuflask.memory import limit_malloc_arenas

    assert limit_malloc_arenas() is True  # glibc here
    # wsgi.py does it at import, in each worker, before building the app.
    code = (
        "import mpuflask.memory as m; calls = []; real = m.limit_malloc_arenas\n"
        "m.limit_malloc_arenas = lambda *a: calls.append(1) or real(*a)\n"
        "import wsgi; print(calls)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"MPUFLASK_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin"},
    )
    assert out.stdout.strip().endswith("[1]")


@pytest.mark.filesystem_only("the listing is patched on the filesystem store")
def test_mpu_listparts_writes_the_json_that_json_dumps_would(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parts array is written directly (10,000 parts in a third of the
    time): byte for byte what ``json.dumps`` writes, whatever an etag holds."""
    import json

    from mpuflask.storage.base import UploadedPart
    from mpuflask.storage.fsupload import FilesystemUpload

    client = app.test_client()
    created = client.post('/d\u00e9j\u00e0 "vu"?action=mpu-create')
    upload_id = created.json["uploadId"]
    etags = ['"quoted"', "back\\slash", "\u00e9\n\u2028\x00", "0" * 32]
    listed = [UploadedPart(n, etag, n * 7) for n, etag in enumerate(etags, 1)]
    monkeypatch.setattr(FilesystemUpload, "list_parts", lambda self: listed)
    answer = client.get(
        f"/d%C3%A9j%C3%A0%20%22vu%22?action=mpu-listparts&uploadId={upload_id}"
    )
    assert answer.status_code == 200, answer.text
    expected = {
        "key": 'd\u00e9j\u00e0 "vu"',
        "uploadId": upload_id,
        "expires": created.json["expires"],
        "parts": [
            {"partNumber": p.part_number, "etag": p.etag, "size": p.size}
            for p in listed
        ],
    }
    text = json.dumps(expected, ensure_ascii=False, separators=(",", ":"))
    assert answer.get_data() == text.encode()
    assert answer.content_type == "application/json"


def test_a_request_finds_its_metric_series_without_labels(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """prometheus_client's ``labels()`` checks its values and takes a lock on
    every call: a request of a kind seen before finds its series in one
    dictionary lookup, and still counts."""
    app = make_app()
    metrics = app.extensions["mpuflask"].metrics
    client = app.test_client()
    assert client.get("/k?action=get").status_code == 404
    calls: list[tuple[Any, ...]] = []
    for metric in (metrics.requests, metrics.latency):
        real = metric.labels

        def labels(*values: Any, _real: Any = real) -> Any:
            calls.append(values)
            return _real(*values)

        monkeypatch.setattr(metric, "labels", labels)
    for _ in range(3):
        assert client.get("/k?action=get").status_code == 404
    assert calls == []
    assert client.get("/k?action=nothing").status_code == 400
    assert calls == [("other", "GET", "400"), ("other",)]
    # Actions a client invents share the one "other" series: none is kept.
    for number in range(5):
        assert client.get(f"/k?action=made-up-{number}").status_code == 400
    assert len(calls) == 2
    assert len(metrics._series) == 2
    monkeypatch.undo()

    text = client.get("/?action=metrics").text
    assert 'mpuflask_requests_total{action="get",method="GET",status="404"} 4.0' in text
    assert 'mpuflask_request_duration_seconds_count{action="get"} 4.0' in text


def test_the_json_log_formats_each_second_once() -> None:
    """strftime was a third of a log line's formatting: lines of one second
    share its text, and a line of the next second gets its own."""
    from mpuflask.observability import JsonFormatter

    formatter = JsonFormatter()
    formatted: list[float] = []
    real = formatter.formatTime

    def format_time(record: logging.LogRecord, datefmt: str | None = None) -> str:
        formatted.append(record.created)
        return real(record, datefmt)

    formatter.formatTime = format_time  # type: ignore[method-assign]

    def line(created: float) -> dict[str, Any]:
        record = logging.LogRecord("t", logging.INFO, "f", 1, "m", None, None)
        record.created = created
        return json.loads(formatter.format(record))  # type: ignore[no-any-return]

    first, again, later = line(1e9 + 0.1), line(1e9 + 0.9), line(1e9 + 1.0)
    assert formatted == [1e9 + 0.1, 1e9 + 1.0]
    assert first["time"] == again["time"] != later["time"]
    fresh = JsonFormatter()
    record = logging.LogRecord("t", logging.INFO, "f", 1, "m", None, None)
    record.created = 1e9 + 0.9
    assert again["time"] == fresh.formatTime(record, "%Y-%m-%dT%H:%M:%S%z")


def test_the_hooks_view_of_a_request_is_made_only_for_a_hook(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every request made a RequestInfo for the auth hooks, and every part a
    PartInfo for the part validators, with no hook to see either. Now they
    are made only for a hook; a validator still sees the request the auth
    hooks saw, and who sent it."""
    from mpuflask import extension
    from mpuflask.hooks import PartInfo
    from mpuflask.hooks import RequestInfo

    made: list[RequestInfo] = []

    def counted() -> RequestInfo:
        info = real()
        made.append(info)
        return info

    real = extension.request_info
    monkeypatch.setattr(extension, "request_info", counted)
    monkeypatch.setattr("mpuflask.current.request_info", counted)

    def round_trip(app: Any) -> None:
        client = app.test_client()
        upload_id = client.post("/k?action=mpu-create").json["uploadId"]
        part = client.put(
            f"/k?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1", data=b"x"
        )
        assert part.status_code == 200, part.text
        parts = {"parts": [{"partNumber": 1, "etag": part.json["etag"]}]}
        done = client.post(f"/k?action=mpu-complete&uploadId={upload_id}", json=parts)
        assert done.status_code == 200, done.text
        assert client.get("/k?action=get").data == b"x"

    # Checksum verification, on by default, is a part validator.
    round_trip(make_app(MPUFLASK_VERIFY_CHECKSUMS=False))
    assert made == []

    app = make_app(MPUFLASK_VERIFY_CHECKSUMS=False)
    mpu = app.extensions["mpuflask"]
    seen: list[PartInfo] = []
    mpu.authenticate(lambda request: "ann")
    mpu.validate_part(lambda part: seen.append(part))
    round_trip(app)
    assert len(made) == 4  # one a request, for the auth hook
    assert [part.request for part in seen] == [made[1]]
    assert seen[0].identity == "ann"
    assert (seen[0].part_number, seen[0].content_length) == (1, 1)


def test_the_default_checksums_see_a_part_only_if_it_sends_one(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checksum validators, on by default, read one header each and pass
    a part without it by: such a part is not described to them (no
    RequestInfo, no PartInfo); one that sends either header is, and is
    still checked."""
    import base64
    import hashlib

    from mpuflask import extension

    made: list[Any] = []
    real = extension.request_info

    def counted() -> Any:
        made.append(real())
        return made[-1]

    monkeypatch.setattr("mpuflask.current.request_info", counted)
    client = make_app().test_client()
    upload_id = client.post("/k?action=mpu-create").json["uploadId"]
    target = f"/k?action=mpu-uploadpart&uploadId={upload_id}&partNumber="
    assert client.put(target + "1", data=b"x").status_code == 200
    assert made == []
    md5 = base64.b64encode(hashlib.md5(b"x").digest()).decode()
    sha = base64.b64encode(hashlib.sha256(b"y").digest()).decode()
    sent = client.put(target + "2", data=b"x", headers={"Content-MD5": md5})
    assert sent.status_code == 200, sent.text
    assert len(made) == 1
    wrong = client.put(target + "3", data=b"x", headers={"Content-MD5": sha[:24]})
    assert wrong.status_code == 400, wrong.text
    refused = client.put(
        target + "4", data=b"x", headers={"x-amz-checksum-sha256": sha}
    )
    assert refused.status_code == 400 and "BadDigest" in refused.text
    assert len(made) == 3
