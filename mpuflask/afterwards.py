"""Clean-up a request leaves for after its answer: the client need not wait.

A delete, a complete that replaces an object, or an abort commits by moving
the old bytes into the store's ``trash/``; deleting them from there only frees
space (20,000 unlinks for an object of 10,000 parts). The store hands that
work to ``after_answer`` (:class:`~mpuflask.storage.base.LeavesCleanup`);
here it is kept on the request (``flask.g``, from the first
``before_request``) and run by Werkzeug's
``call_on_close``, which the WSGI server calls once the last byte of the
response is out. If the process dies first, the store's sweep reclaims the
entry. Outside a request (the CLI, the start-up sweep) it runs at once.
"""

from __future__ import annotations

import logging
from functools import partial

from flask import Flask
from flask import Response
from flask import g
from flask import has_app_context

from .storage.base import Bucket
from .storage.base import Cleanup
from .storage.base import LeavesCleanup

log = logging.getLogger(__name__)

_PENDING = "mpuflask_after_answer"


def install_after_answer(app: Flask, bucket: Bucket) -> None:
    """Run ``bucket``'s clean-up once each answer is sent (if it leaves any)."""
    if not isinstance(bucket, LeavesCleanup):
        return
    bucket.after_answer = after_answer

    @app.before_request
    def _collect() -> None:
        setattr(g, _PENDING, [])

    @app.after_request
    def _run_when_sent(response: Response) -> Response:
        pending: list[Cleanup] | None = g.pop(_PENDING, None)
        if pending and response.direct_passthrough:
            # Werkzeug hands such a body to the server as it is, without
            # the call_on_close callbacks: run them now rather than never.
            run_all(pending)
        elif pending:
            response.call_on_close(partial(run_all, pending))
        return response


def after_answer(cleanup: Cleanup) -> None:
    """Keep ``cleanup`` for after this request's answer; at once outside one
    (a command, the sweep, a test's own call in a request context it pushed)."""
    pending: list[Cleanup] | None = g.get(_PENDING) if has_app_context() else None
    if pending is None:
        cleanup()
    else:
        pending.append(cleanup)


def run_all(cleanups: list[Cleanup]) -> None:
    """Run each clean-up; one that fails is logged and the others still run."""
    for cleanup in cleanups:
        try:
            cleanup()
        except Exception:  # the answer is out: nobody else could hear of it
            log.exception("a clean-up after the answer failed")
