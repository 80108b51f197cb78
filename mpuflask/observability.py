"""Request ids, structured logs and Prometheus metrics.

* Every request gets an id: the client's ``X-Request-Id`` if it is sane, else a
  new one; it is returned in ``X-Request-Id`` and attached to every log line
  written while the request runs (``request_id`` on the LogRecord).
* One structured log line per API request (``mpuflask.access``): method,
  action, key, status, bytes, duration, identity, request id.
* Metrics (prometheus_client) in a per-app registry; under gunicorn, with
  ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn.conf.py does it), every worker's
  values are summed at scrape time.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from flask import Flask
from flask import Response
from flask import g
from flask import has_request_context
from flask import request
from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Histogram
from prometheus_client import generate_latest
from prometheus_client import multiprocess
from prometheus_client import values
from prometheus_client.core import GaugeMetricFamily

from . import environheaders
from .actions import ACTIONS
from .actions import SERVICE_ACTIONS
from .routing import KNOWN_METHODS
from .storage import Bucket

REQUEST_ID_HEADER = "X-Request-Id"
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
access_log = logging.getLogger("mpuflask.access")

#: Metric labels come from these closed sets, never from the request as sent:
#: a client inventing actions or methods must not create new time series.
METRIC_ACTIONS = frozenset({*ACTIONS, *SERVICE_ACTIONS, "-"})
METRIC_METHODS = frozenset({*KNOWN_METHODS, "OPTIONS"})
OTHER = "other"


def metric_labels(action: str, method: str) -> tuple[str, str]:
    """``(action, method)`` as metric labels: known values, else ``other``."""
    return (
        action if action in METRIC_ACTIONS else OTHER,
        method if method in METRIC_METHODS else OTHER,
    )


def current_request_id() -> str:
    """The id of the request being served, or ``-`` outside a request."""
    if has_request_context():
        request_id: str = g.get("request_id", "-")
        return request_id
    return "-"


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record, so formatters can print it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, extras."""

    _STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
        "message",
        "asctime",
    }

    #: Values JSON cannot hold are written as their str().
    _encoder = json.JSONEncoder(default=str)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The last second formatted, and its text: a busy server writes many
        #: lines a second, and strftime is a third of a line's formatting.
        self._second: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        cached = self._second
        if cached[0] != second:
            cached = (second, self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"))
            self._second = cached  # one assignment: safe between threads
        entry: dict[str, Any] = {
            "time": cached[1],
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            # Not getattr's default: that would look the request up every time.
            "request_id": (
                record.request_id
                if hasattr(record, "request_id")
                else current_request_id()
            ),
        }
        for name, value in vars(record).items():
            if name not in self._STANDARD and name not in entry:
                entry[name] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return self._encoder.encode(entry)


@dataclass
class Metrics:
    """The app's Prometheus metrics."""

    bucket: Bucket
    registry: CollectorRegistry
    requests: Counter
    bytes_in: Counter
    bytes_out: Counter
    latency: Histogram
    rejections: Counter
    sweeps: Counter
    swept: Counter
    #: Collectors read at scrape time, added by features (events' pending gauge).
    collectors: list[Any] = field(default_factory=list)
    #: Each request's labelled series, by its labels: prometheus_client's
    #: labels() checks and locks on every call. Bounded: the labels come from
    #: closed sets (:func:`metric_labels`), statuses from the app's answers.
    _series: dict[tuple[str, str, int], tuple[Any, Any]] = field(default_factory=dict)

    def request_series(self, action: str, method: str, status: int) -> tuple[Any, Any]:
        """The request counter's and the latency histogram's series for a
        request: made on first use, then one dictionary lookup."""
        key = (*metric_labels(action, method), status)
        found = self._series.get(key)
        if found is None:
            found = (
                self.requests.labels(key[0], key[1], str(status)),
                self.latency.labels(key[0]),
            )
            self._series[key] = found
        return found


class ProcessId:
    """``os.getpid()`` without a system call per use: refreshed after each fork."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        os.register_at_fork(after_in_child=self._refresh)

    def _refresh(self) -> None:
        self.pid = os.getpid()

    def __call__(self) -> int:
        return self.pid


def cheap_multiprocess_values() -> None:
    """Make prometheus_client's multi-process values find their pid for free.

    In multi-process mode every ``inc()`` and ``observe()`` calls
    ``os.getpid()`` to notice a fork: five system calls a request here. A pid
    refreshed at fork says the same. Done once per process, before the first
    value is made (two value classes must never share a process's files).
    """
    current = values.ValueClass
    if getattr(current, "_multiprocess", False) and not hasattr(current, "_pid_cached"):
        cheap = values.MultiProcessValue(ProcessId())  # type: ignore[no-untyped-call]
        cheap._pid_cached = True
        values.ValueClass = cheap


def make_metrics(bucket: Bucket) -> Metrics:
    """Create the metrics in a registry of the app's own (no global state)."""
    cheap_multiprocess_values()
    registry = CollectorRegistry(auto_describe=True)
    registry.register(_OpenUploads(bucket))
    buckets = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
    return Metrics(
        bucket=bucket,
        registry=registry,
        requests=Counter(
            "mpuflask_requests",
            "API requests by action, method and status.",
            ["action", "method", "status"],
            registry=registry,
        ),
        bytes_in=Counter(
            "mpuflask_received_bytes", "Part bytes received.", registry=registry
        ),
        bytes_out=Counter(
            "mpuflask_sent_bytes",
            "Object bytes sent (by Content-Length).",
            registry=registry,
        ),
        latency=Histogram(
            "mpuflask_request_duration_seconds",
            "Time to answer, by action (parts include their upload time).",
            ["action"],
            buckets=buckets,
            registry=registry,
        ),
        rejections=Counter(
            "mpuflask_hook_rejections",
            "Requests refused by a hook, by moment and status.",
            ["moment", "status"],
            registry=registry,
        ),
        sweeps=Counter("mpuflask_sweeps", "Sweeps run.", registry=registry),
        swept=Counter(
            "mpuflask_swept_items",
            "Expired uploads and leftovers removed.",
            registry=registry,
        ),
    )


class _OpenUploads:
    """Collector: uploads in progress, counted by the store at scrape time."""

    def __init__(self, bucket: Bucket) -> None:
        self.bucket = bucket

    def collect(self) -> list[GaugeMetricFamily]:
        count = getattr(self.bucket, "count_open_uploads", None)
        if count is None:
            return []
        gauge = GaugeMetricFamily("mpuflask_uploads_in_progress", "Open uploads.")
        gauge.add_metric([], float(count()))
        return [gauge]


def scrape(metrics: Metrics) -> Response:
    """The metrics in Prometheus' text format (all workers under gunicorn)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(_OpenUploads(metrics.bucket))
        for collector in metrics.collectors:
            registry.register(collector)
        data = generate_latest(registry)
    else:
        data = generate_latest(metrics.registry)
    return Response(data, 200, content_type="text/plain; version=0.0.4; charset=utf-8")


METRICS_DIR_PREFIX = "mpuflask-metrics-"


def prepare_metrics_dir(path: str) -> None:
    """Make ``path`` (``mpuflask-metrics-<server pid>``) an empty folder.

    Folders that servers killed without a chance to clean up left beside it
    (their pid is gone) are removed first, so restarts do not pile them up.
    """
    for entry in os.scandir(os.path.dirname(path)):
        owner = entry.name.removeprefix(METRICS_DIR_PREFIX)
        if entry.name.startswith(METRICS_DIR_PREFIX) and owner.isascii():
            if owner.isdigit() and not _alive(int(owner)):
                shutil.rmtree(entry.path, ignore_errors=True)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)


def remove_metrics_dir(path: str) -> None:
    """Delete the server's metrics folder when it exits."""
    if os.path.basename(path).startswith(METRICS_DIR_PREFIX):
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def install_observability(app: Flask, metrics: Metrics) -> None:
    """Request ids, the access log line and the request metrics, app-wide."""

    @app.before_request
    def _start() -> None:
        # request.headers.get(REQUEST_ID_HEADER, "")
        given = request.environ.get(environheaders.X_REQUEST_ID, "")
        # 32 random hex digits (what uuid4().hex gives, without making a UUID).
        g.request_id = given if _SANE_ID.fullmatch(given) else os.urandom(16).hex()
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        # The request and g looked up once each below: every use of a proxy
        # is a context lookup, and this runs for every request.
        req = request._get_current_object()  # type: ignore[attr-defined]
        ctx_g = g._get_current_object()
        # current_request_id(), from the g already looked up.
        response.headers[REQUEST_ID_HEADER] = ctx_g.get("request_id", "-")
        method = req.method
        action = req.args.get("action") or "-"
        elapsed = time.perf_counter() - ctx_g.get("started", time.perf_counter())
        status = response.status_code
        counter, latency = metrics.request_series(action, method, status)
        counter.inc()
        latency.observe(elapsed)
        # Parsed from the headers at each use: once here.
        content_length = environheaders.content_length(req.environ)
        if action == "mpu-uploadpart" and status == 200 and content_length:
            metrics.bytes_in.inc(content_length)
        if action == "get" and method == "GET" and status in (200, 206):
            metrics.bytes_out.inc(response.content_length or 0)
        refused_by = ctx_g.get("hook_refused")
        if refused_by is not None and status >= 400:
            metrics.rejections.labels(refused_by, str(status)).inc()
        if access_log.isEnabledFor(logging.INFO):
            path = req.path
            access_log.info(
                "%s %s %s -> %d",
                method,
                action,
                path,
                status,
                extra={
                    "method": method,
                    "action": action,
                    "path": path,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                    "content_length": content_length,
                    "response_length": response.content_length,
                    "identity": ctx_g.get("mpuflask_identity"),
                    "remote_addr": req.remote_addr,
                },
            )
        return response
