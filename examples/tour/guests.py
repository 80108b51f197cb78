"""Exercise 1 of docs/tour.md, solved: guests may read, and nothing more.

An auth hook: a request without credentials may ``get`` (GET or HEAD) an
object, as the identity ``guest``; any other action without credentials is
refused with 401. A request that carries ``Authorization`` is left to the
other hooks: the built-in bearer-token hook, which runs first (hooks from
the settings run before those named after them, in order), decides a
``Bearer`` token; another scheme (``Basic`` from a proxy) that no hook takes
gets the generic 401.

Run it::

    MPUFLASK_AUTH_TOKENS=t-admin \\
    MPUFLASK_AUTH_HOOKS=examples.tour.guests:guests_may_read gunicorn wsgi:app
    curl 'http://127.0.0.1:8000/a.bin?action=get'                    # 404: allowed
    curl -X POST 'http://127.0.0.1:8000/a.bin?action=mpu-create'     # 401
"""

from __future__ import annotations

from mpuflask.errors import Unauthorized
from mpuflask.hooks import RequestInfo


def guests_may_read(req: RequestInfo) -> str | None:
    """Auth hook: anonymous callers may read objects, and nothing else."""
    if "Authorization" in req.headers:
        return None  # a credential: another hook decides
    if req.action == "get":
        return "guest"
    raise Unauthorized(f"Unauthorized: guests may only read, not {req.action}")
