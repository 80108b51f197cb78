"""mpuflask's gunicorn settings, each read from the environment.

``mpuflask serve`` loads this module as gunicorn's configuration
(``-c python:mpuflask.serving.gunicorn_settings``); from a clone, the
top-level ``gunicorn.conf.py`` re-exports it for ``gunicorn wsgi:app``. Every
setting can be overridden with ``GUNICORN_<NAME>`` or gunicorn's own
command-line flags (``mpuflask serve -b 0.0.0.0:8000 -w 8``).

It imports nothing of mpuflask at the top, and ``mpuflask/__init__.py``
imports nothing heavy: the metrics folder below must be in the environment
before prometheus_client is first imported in this process.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import shutil
import sys
import tempfile
from typing import Any


def _env(name: str, default: object) -> str:
    """``GUNICORN_<name>``, or ``default``; set but empty stops the server."""
    value = os.environ.get(f"GUNICORN_{name}")
    if value is None:
        return str(default)
    if not value.strip():
        _refuse(f"GUNICORN_{name} is set but empty; unset it or give it a value")
    return value


def _int_env(name: str, default: int, minimum: int, maximum: int) -> int:
    """``GUNICORN_<name>`` as a whole number in range, or ``default``."""
    text = _env(name, default)
    if not (text.isascii() and text.isdigit() and minimum <= int(text) <= maximum):
        _refuse(
            f"GUNICORN_{name} must be an integer from {minimum} to {maximum}, "
            f"not {text!r}"
        )
    return int(text)


def _bool_env(name: str, default: bool) -> bool:
    """``GUNICORN_<name>`` read as every boolean setting is (true/false, 1/0,
    yes/no, on/off), or ``default``."""
    from mpuflask.setting_types import BOOLEAN_WORDS
    from mpuflask.setting_types import FALSE_WORDS
    from mpuflask.setting_types import TRUE_WORDS

    text = _env(name, "true" if default else "false").strip().lower()
    if text not in TRUE_WORDS | FALSE_WORDS:
        _refuse(f"GUNICORN_{name} must be {BOOLEAN_WORDS}, not {text!r}")
    return text in TRUE_WORDS


def _check_names(ours: frozenset[str], gunicorns: frozenset[str]) -> None:
    """Stop on a misspelt ``GUNICORN_*`` setting (close to one of ours): it
    would otherwise be ignored, and the server start with the default."""
    import difflib

    for name in sorted(os.environ):
        suffix = name.removeprefix("GUNICORN_")
        if suffix == name or suffix in ours or suffix in gunicorns:
            continue
        # Only a near miss of ours is refused: other GUNICORN_* variables
        # (a Kubernetes service named gunicorn, an operator's own config
        # file) are not ours to judge.
        close = difflib.get_close_matches(suffix, sorted(ours), n=1, cutoff=0.8)
        if close:
            _refuse(
                f"unknown setting {name} in the environment; did you mean "
                f"GUNICORN_{close[0]}?"
            )


def _check_worker_class(uri: str) -> None:
    """Load ``uri`` as gunicorn will (a traceback from its master, else)."""
    from gunicorn.util import load_class  # type: ignore[import-untyped]

    try:
        load_class(uri)
    except Exception:
        _refuse(
            f"GUNICORN_WORKER_CLASS {uri!r} is no worker class gunicorn can load "
            "(gthread, sync, or a dotted path like mpuflask.worker.DeadlineWorker)"
        )


def _refuse(line: str) -> None:
    """Stop here with one line (gunicorn prints a traceback for an exception
    in its config file; SystemExit passes through)."""
    print(f"mpuflask: {line}", file=sys.stderr, flush=True)
    raise SystemExit(1)


#: The GUNICORN_<NAME> settings read below (and by mpuflask.worker), and the
#: variables gunicorn itself reads (its flags, a re-exec's sockets and pid).
SETTING_NAMES = frozenset(
    {
        "BIND", "WORKERS", "WORKER_CLASS", "THREADS", "TIMEOUT",
        "GRACEFUL_TIMEOUT", "KEEPALIVE", "HEADER_TIMEOUT", "LIMIT_REQUEST_LINE",
        "CONTROL", "ACCESSLOG", "ERRORLOG", "LOGLEVEL",
    }
)  # fmt: skip
GUNICORNS_OWN = frozenset({"CMD_ARGS", "FD", "PID", "DIRTY_SOCKET"})
_check_names(SETTING_NAMES, GUNICORNS_OWN)

# -- the app --------------------------------------------------------------------
# Served when no APP_MODULE is given (`mpuflask serve`, a bare `gunicorn` in a
# clone); `mpuflask serve myco.app:app` serves your own app with these settings.
wsgi_app = "mpuflask.wsgi:app"

# -- socket -------------------------------------------------------------------
# Loopback by default: put a reverse proxy (or an explicit bind) in front
# before exposing the server.
bind = _env("BIND", "127.0.0.1:8000")

# -- workers ------------------------------------------------------------------
# The work is I/O: streaming bodies to disk and files to sockets, with MD5 on
# the way (hashlib releases the GIL). One process per core plus one keeps the
# cores busy; threads inside each process carry the many slow, long-lived
# connections of big uploads.
workers = _int_env("WORKERS", multiprocessing.cpu_count() + 1, 1, 1024)

# mpuflask.worker.DeadlineWorker: gunicorn's gthread worker with deadlines for
# slow clients (mpuflask/worker.py). Why not the others:
# - sync: one slow client blocks a whole process for the length of a multi-GiB
#   part, and gunicorn kills it after `timeout` seconds.
# - gthread as shipped (gunicorn 27): a connection gets a pool thread once a
#   byte arrives, and the thread then waits for the rest of the request head
#   with no deadline; gunicorn has no header timeout at all. 40-100 clients
#   sending headers slowly held every thread and 50-100% of other requests
#   failed.
# - gevent/eventlet: a slow socket costs a greenlet, not a thread, but the
#   store blocks on flock, fsync and disk writes, which would stall every
#   connection of the process; and they need monkey patching and a dependency.
# DeadlineWorker keeps gthread's request handling and changes who waits: the
# main loop reads request heads without blocking and hands a connection to a
# thread only when its head is complete (GUNICORN_HEADER_TIMEOUT below), and a
# worker with no free thread stops accepting so another worker takes the
# connection. Bodies and responses are bounded by the app (MPUFLASK_BODY_TIMEOUT,
# MPUFLASK_BODY_MIN_RATE, MPUFLASK_SEND_TIMEOUT: mpuflask/deadlines.py). It
# serves plain HTTP/1: TLS goes in the proxy in front (docs/deployment.md).
# GUNICORN_WORKER_CLASS=gthread gives the stock worker back (the app's
# deadlines still apply).
worker_class = _env("WORKER_CLASS", "mpuflask.worker.DeadlineWorker")
if "GUNICORN_WORKER_CLASS" in os.environ:  # ours is known to load
    _check_worker_class(worker_class)
# Threads wait for clients; the CPU work (MD5, copies) releases the GIL. A
# thread blocked on a slow socket costs a stack, little resident memory, so
# there are enough that a few hundred slow uploads and downloads, each bounded
# by the deadlines, leave threads free for everyone else (bench/slow_clients.py,
# 200 slow connections on 2 cores: 16 threads answered 0% of health checks
# within 2 s, 64 answered 100%).
threads = _int_env("THREADS", 64, 1, 10_000)

# -- timeouts -----------------------------------------------------------------
# With gthread, `timeout` is how long a worker's main loop may stay silent
# (a deadlocked or stuck process), not how long a request may take: a 50 GiB
# part streaming for an hour is fine.
timeout = _int_env("TIMEOUT", 60, 0, 10**9)  # 0: gunicorn never times out
# On restart or shutdown, let in-flight parts finish for this long.
graceful_timeout = _int_env("GRACEFUL_TIMEOUT", 120, 0, 10**9)
# Parallel part uploads reuse their connections: keep them open a while (an
# idle kept-alive connection waits in the main loop, not in a thread).
keepalive = _int_env("KEEPALIVE", 30, 0, 10**9)
# GUNICORN_HEADER_TIMEOUT (seconds, default 15): a request head (request line
# and headers) must arrive within this long after the connection opens, or
# after the first byte of a kept-alive connection's next request line (empty
# lines before it leave the connection idle); else 408 and close. Read by
# mpuflask.worker itself: gunicorn has no such setting. A real client sends its
# head in one packet; this frees what a stalled or trickling client holds (a
# socket; never a thread).
# Each worker holds at most `worker_connections` connections (gunicorn's
# default, 1000), waiting heads included; past that it stops accepting.
# Checked here, once, before the server listens.
if "GUNICORN_HEADER_TIMEOUT" in os.environ:
    from mpuflask.worker import header_timeout

    try:
        header_timeout(os.environ)
    except RuntimeError as error:
        _refuse(str(error))

# -- limits -------------------------------------------------------------------
# Query strings carry keys up to 1024 bytes, percent-encoded up to 3x.
limit_request_line = _int_env("LIMIT_REQUEST_LINE", 8190, 0, 8190)

# -- control ------------------------------------------------------------------
# gunicorn 25+ opens a control socket in ~/.gunicorn; several servers on one
# machine (tests, blue/green) would fight over it. Opt in with GUNICORN_CONTROL=true.
control_socket_disable = not _bool_env("CONTROL", False)

# -- logging ------------------------------------------------------------------
# The app writes one structured line per request (logger "mpuflask.access",
# with its request id), so gunicorn's own access log is off unless asked for.
accesslog = _env("ACCESSLOG", "") or None
errorlog = _env("ERRORLOG", "-")
# gunicorn builds every request's access-log fields once any logging config is
# given (logconfig_dict below), even when gunicorn.access drops them: this
# logger skips that work unless the access log is on.
logger_class = "mpuflask.gunicorn_logging.Logger"
loglevel = _env("LOGLEVEL", "info")
if loglevel.lower() not in ("debug", "info", "warning", "error", "critical"):
    _refuse(
        "GUNICORN_LOGLEVEL must be debug, info, warning, error or critical, "
        f"not {loglevel!r}"
    )
# MPUFLASK_LOG_FORMAT=json (default) writes one JSON object per line, with
# request_id on every line written while a request runs; "text" for humans.
# Another value stops the server in on_starting (below), with one line.
_log_format = os.environ.get("MPUFLASK_LOG_FORMAT", "json")
if _log_format not in ("json", "text"):
    _log_format = "json"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "mpuflask.observability.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "mpuflask.observability.JsonFormatter"},
        "text": {
            "format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": _log_format,
            "filters": ["request_id"],
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": loglevel.upper(), "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {
            "level": loglevel.upper(),
            "handlers": [],
            "propagate": True,
        },
        "gunicorn.access": {
            "level": "INFO" if accesslog else "WARNING",
            "handlers": [],
            "propagate": True,
        },
    },
}

# -- metrics --------------------------------------------------------------------
# prometheus_client's multi-process mode: each worker writes its values to
# files in this directory and GET /?action=metrics sums them. A folder of the
# server's own, emptied at start (counters of a previous run do not leak in)
# and removed at exit; folders of killed servers are removed at the next start.
# (The variable is set before prometheus_client is imported: it reads it once,
# at import.)
_own_metrics_dir: str | None = None
if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
    _own_metrics_dir = os.path.join(
        tempfile.gettempdir(), f"mpuflask-metrics-{os.getpid()}"
    )
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _own_metrics_dir
    from mpuflask.observability import prepare_metrics_dir

    prepare_metrics_dir(_own_metrics_dir)
else:
    _metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    os.makedirs(_metrics_dir, exist_ok=True)


# -- server hooks ---------------------------------------------------------------
_LOOPBACK = ("127.", "localhost", "[::1]", "unix:")


def on_starting(server: Any) -> None:
    """Check what the server was given once, before any worker starts.

    A bad bind, worker count or setting (mpuflask/config.py) stops the
    server here with one line, instead of a traceback from every worker or a
    server that never answers (:mod:`.startup_checks`).
    """
    from .startup_checks import listening_problem
    from .startup_checks import settings_verdict

    problem = listening_problem(server.cfg)
    if problem:
        _refuse(problem)
    verdict = settings_verdict(server.cfg)
    if verdict.startswith("error "):
        _refuse(verdict[6:])
    server.mpuflask_auth = verdict == "auth"


def when_ready(server: Any) -> None:
    """Warn when the server listens beyond loopback with no auth configured."""
    exposed = [b for b in server.cfg.bind if not b.startswith(_LOOPBACK)]
    if exposed and not getattr(server, "mpuflask_auth", False):
        server.log.warning(
            "mpuflask is listening on %s without authentication: anyone who can "
            "reach it can read, write and delete objects. Set MPUFLASK_AUTH_TOKENS "
            "or MPUFLASK_SIGNING_KEY (docs/hooks.md).",
            ", ".join(exposed),
        )


def post_worker_init(worker: Any) -> None:
    """Start the periodic sweep of expired uploads in this worker, and its
    event delivery loop; then freeze what is loaded for the garbage collector.

    Each worker runs the timer; a lock in the data directory lets only one
    of them sweep at a time (mpuflask/sweeper.py). Likewise each worker runs
    a delivery loop, and only the holder of the outbox's lease delivers
    (mpuflask/events/delivery.py).

    The app, its modules and its settings live as long as the worker:
    ``gc.freeze()`` takes them out of every later collection. A full
    collection otherwise walks all of them, about 15 ms each time, and a
    request that makes many objects (a complete or a listing of 10,000
    parts) triggers one.
    """
    from mpuflask.events import start_event_delivery
    from mpuflask.sweeper import start_periodic_sweep

    app = getattr(worker, "wsgi", None)
    if app is not None and "mpuflask" in getattr(app, "extensions", {}):
        start_periodic_sweep(app)
        start_event_delivery(app)
    gc.collect()  # what start-up left behind is freed, not frozen
    gc.freeze()


def child_exit(server: Any, worker: Any) -> None:
    """Tell prometheus_client a worker died, so its live gauges are dropped."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    """Remove the metrics folder this server made for itself."""
    if _own_metrics_dir is not None:
        from mpuflask.observability import remove_metrics_dir

        remove_metrics_dir(_own_metrics_dir)
