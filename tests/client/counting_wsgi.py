"""gunicorn app ``tests.client.counting_wsgi:app``: mpuflask, every request logged.

``MPU_TEST_LOG``: file of ``METHOD action partNumber status`` lines.
``MPU_TEST_ADMIT``, ``MPU_TEST_COUNTER``, ``MPU_TEST_GATE``: if set, only
that many part uploads are let through until the gate file exists
(:class:`tests.client.middleware.HoldParts`).
"""

from __future__ import annotations

import os
from pathlib import Path

from mpuflask import create_app
from tests.client.middleware import HoldParts
from tests.client.middleware import RequestLog

app = create_app()
if "MPU_TEST_ADMIT" in os.environ:
    app.wsgi_app = HoldParts(
        app.wsgi_app,
        int(os.environ["MPU_TEST_ADMIT"]),
        Path(os.environ["MPU_TEST_COUNTER"]),
        Path(os.environ["MPU_TEST_GATE"]),
    )
app.wsgi_app = RequestLog(app.wsgi_app, Path(os.environ["MPU_TEST_LOG"]))
