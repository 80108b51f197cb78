"""The API's actions: the one list every other module reads.

The seed Worker's ``switch (action)`` knows ``mpu-create``, ``mpu-complete``,
``mpu-uploadpart``, ``get``, ``mpu-abort`` and ``delete``; ``mpu-listparts`` is
ours. Each is one endpoint of a blueprint (``@bp.action(name, ...)`` in
``mpuflask/blueprints/``); this list is what tokens may be limited to
(``MPUFLASK_AUTH_TOKENS``, ``"actions"``) and what metrics label by name.
``tests/test_action_routing.py`` checks that an app routes exactly these.
"""

from __future__ import annotations

#: The actions a client calls on a key, in the seed Worker's order, then ours.
ACTIONS = (
    "mpu-create",
    "mpu-complete",
    "mpu-uploadpart",
    "get",
    "mpu-abort",
    "delete",
    "mpu-listparts",
    "list",
    "mpu-list",
)

#: Actions on ``/`` that list (objects, open uploads): for auth hooks the key
#: they address is the ``prefix`` asked for (docs/security.md).
LISTING_ACTIONS = frozenset({"list", "mpu-list"})

#: Actions on ``/`` alone that any caller may use: no key, no credentials.
SERVICE_ACTIONS = ("health", "metrics")

#: The R2 binding method each action calls: the prefix of its errors.
OPERATIONS = {
    "mpu-create": "createMultipartUpload",
    "mpu-complete": "completeMultipartUpload",
    "mpu-uploadpart": "uploadPart",
    "get": "get",
    "mpu-abort": "abortMultipartUpload",
    "delete": "delete",
    "mpu-listparts": "listParts",
    "list": "list",
    "mpu-list": "listMultipartUploads",
}
