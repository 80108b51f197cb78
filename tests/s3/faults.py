"""A boto3 client that counts the store's engine requests and fails at one.

The S3 store sends every request through ``S3Engine.client`` (and
``stream_client`` for streamed parts); :func:`install` replaces both with a
:class:`FaultyClient` that passes calls to the real client and, at call number
``at`` (0-based), does one of:

* ``fail``: the request never reaches the engine; the store sees a 500;
* ``lost``: the engine does it, but the store sees a 500 (the answer is lost);
* ``stop``: the gateway dies before sending it: :class:`Crash` is raised, and
  every later call raises it too (nothing of the dead gateway's cleanup ever
  reaches the engine);
* ``stop-after``: the engine does it, then the gateway dies.

``Crash`` is a ``BaseException``, so the store's ``except Exception`` clean-up
paths do not catch it, as they would not run in a killed process.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Any

from botocore.exceptions import ClientError

from mpuflask.storage.s3 import S3Bucket

MODES = ("fail", "lost", "stop", "stop-after")


class Crash(BaseException):
    """The gateway process died at this engine request."""


@dataclass
class Plan:
    """Where to fail (call ``at`` in ``mode``), and the calls seen so far."""

    at: int | None = None
    mode: str = "fail"
    calls: list[str] = field(default_factory=list)
    dead: bool = False


class FaultyClient:
    """Wraps one boto3 client; all wrappers of one :class:`Plan` share it."""

    def __init__(self, client: Any, plan: Plan) -> None:
        self._client = client
        self._plan = plan

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name.startswith("_") or name in ("meta", "exceptions"):
            return attribute
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            plan = self._plan
            step = len(plan.calls)
            plan.calls.append(name)
            if plan.dead:
                raise Crash(name)
            if step != plan.at:
                return attribute(*args, **kwargs)
            if plan.mode == "fail":
                raise _engine_error(name)
            if plan.mode == "stop":
                plan.dead = True
                raise Crash(name)
            attribute(*args, **kwargs)
            if plan.mode == "lost":
                raise _engine_error(name)
            plan.dead = True
            raise Crash(name)

        return call


def install(bucket: S3Bucket, plan: Plan) -> Plan:
    """Send ``bucket``'s engine requests through ``plan``'s faulty clients."""
    engine = bucket.engine
    real = [
        client._client if isinstance(client, FaultyClient) else client
        for client in engine._process_clients()
    ]
    engine.use_clients(FaultyClient(real[0], plan), FaultyClient(real[1], plan))
    return plan


def _engine_error(operation: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "InternalError", "Message": "injected"},
            "ResponseMetadata": {"HTTPStatusCode": 500},
        },
        operation,
    )
