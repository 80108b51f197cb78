"""An API-key header check: every request must carry a known ``X-Api-Key``.

The key's owner becomes the request's identity, so each owner can only
continue, complete or abort the uploads it created.

Run it::

    MYCO_API_KEYS='{"k-alice": "alice", "k-bob": "bob"}' \\
    MPUFLASK_AUTH_HOOKS=examples.hooks.api_key:require_api_key gunicorn wsgi:app
    curl -X POST -H 'X-Api-Key: k-alice' 'http://127.0.0.1:8000/a.bin?action=mpu-create'
"""

from __future__ import annotations

import hmac
import json
import os

from mpuflask.errors import Unauthorized
from mpuflask.hooks import RequestInfo


def _keys() -> dict[str, str]:
    """API key -> owner, from the MYCO_API_KEYS environment variable (JSON)."""
    keys: dict[str, str] = json.loads(os.environ.get("MYCO_API_KEYS", "{}"))
    return keys


def require_api_key(req: RequestInfo) -> str:
    """Auth hook: the owner of the presented API key, or 401."""
    presented = req.headers.get("X-Api-Key", "")
    for key, owner in _keys().items():
        if hmac.compare_digest(key.encode(), presented.encode()):
            return owner
    raise Unauthorized("Unauthorized: unknown or missing X-Api-Key")
