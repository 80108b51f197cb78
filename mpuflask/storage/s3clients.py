"""The s3 store's boto3 clients: their settings, one pair per process.

:class:`EngineClients` is the base of :class:`~.s3engine.S3Engine`: the
bucket's name and the clients every engine request goes through. A boto3
session is made once per process and shared by every engine; each engine's
clients are made on first use and again after a fork.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING
from typing import Any
from typing import Self

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: One boto3 session per process, shared by every engine: a session loads the
#: S3 service model (about 0.4 s), its clients then take milliseconds. Making
#: clients from one session is not thread-safe, hence the lock.
_session: boto3.session.Session | None = None
_session_lock = threading.Lock()


class EngineClients:
    """One bucket of an S3 engine and this process's boto3 clients for it.

    ``client`` retries as botocore's standard mode does; ``stream_client``
    never retries (a streamed part's bytes cannot be sent twice). Both are made
    on first use and again after a fork: a socket pool shared by gunicorn's
    workers would mix their requests.
    """

    def __init__(self, bucket: str, client_arguments: dict[str, Any]) -> None:
        self.bucket = bucket
        self._arguments = client_arguments
        self._clients: tuple[Any, Any] | None = None
        self._clients_pid = 0

    @classmethod
    def connect(
        cls,
        bucket: str,
        *,
        endpoint: str | None,
        region: str | None,
        access_key_id: str | None,
        secret_access_key: str | None,
        addressing_style: str,
        max_connections: int,
        max_attempts: int,
    ) -> Self:
        """An engine with the store's client settings."""
        config = Config(
            signature_version="s3v4",
            s3={  # type: ignore[arg-type]
                "addressing_style": addressing_style,
                # Parts stream: botocore must not read a body to hash it.
                # Integrity: our MD5 against the engine's part etag.
                "payload_signing_enabled": False,
            },
            # Engines other than AWS (Ceph, older MinIO, R2) do not all take
            # the CRC trailers newer botocore adds by default.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"mode": "standard", "max_attempts": max_attempts},
            max_pool_connections=max_connections,
            tcp_keepalive=True,
        )
        arguments = {
            "endpoint_url": endpoint,
            "region_name": region,
            "aws_access_key_id": access_key_id,
            "aws_secret_access_key": secret_access_key,
            "config": config,
        }
        return cls(bucket, arguments)

    @property
    def client(self) -> S3Client:
        """This process's boto3 client, with botocore's retries."""
        client: S3Client = self._process_clients()[0]
        return client

    @property
    def stream_client(self) -> S3Client:
        """The client for streamed parts: never retries (their bytes are gone)."""
        client: S3Client = self._process_clients()[1]
        return client

    def use_clients(self, client: Any, stream_client: Any) -> None:
        """Send every request through these (tests: counting, failing clients)."""
        self._clients, self._clients_pid = (client, stream_client), os.getpid()

    def _process_clients(self) -> tuple[Any, Any]:
        global _session
        clients = self._clients
        if clients is None or self._clients_pid != os.getpid():
            with _session_lock:
                clients = self._clients
                if clients is None or self._clients_pid != os.getpid():
                    if _session is None:
                        _session = boto3.session.Session()
                    arguments = self._arguments
                    once = arguments["config"].merge(
                        Config(retries={"mode": "standard", "total_max_attempts": 1})
                    )
                    clients = (
                        _session.client("s3", **arguments),
                        _session.client("s3", **{**arguments, "config": once}),
                    )
                    self._clients, self._clients_pid = clients, os.getpid()
        return clients
