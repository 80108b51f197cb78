"""gunicorn app ``tests.client.faulty_wsgi:app``: mpuflask with injected faults.

``MPU_TEST_503_EVERY=N``: every N-th request in each worker answers 503.
``MPU_TEST_REFUSE_PART=N``: every upload of part N answers 400.
``MPU_TEST_LOG``: every request logged (see ``counting_wsgi``).
"""

from __future__ import annotations

import os
from pathlib import Path

from mpuflask import create_app
from tests.client.middleware import RefusePart
from tests.client.middleware import RequestLog
from tests.client.middleware import Unavailable

app = create_app()
if "MPU_TEST_503_EVERY" in os.environ:
    app.wsgi_app = Unavailable(app.wsgi_app, int(os.environ["MPU_TEST_503_EVERY"]))
if "MPU_TEST_REFUSE_PART" in os.environ:
    app.wsgi_app = RefusePart(app.wsgi_app, int(os.environ["MPU_TEST_REFUSE_PART"]))
app.wsgi_app = RequestLog(app.wsgi_app, Path(os.environ["MPU_TEST_LOG"]))
