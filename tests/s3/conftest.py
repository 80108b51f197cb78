"""Fixtures of the s3 store's own tests: gateways (apps) on the test's bucket."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from mpuflask import create_app
from mpuflask.storage.s3 import S3Bucket

from ..conftest import MIN_PART

Gateway = Callable[..., Flask]


@pytest.fixture
def gateway(s3_engine: Any, s3_bucket: str, spool_dir: Path) -> Gateway:
    """Build a gateway app on the test's bucket (call twice: two gateways)."""

    def make(**settings: Any) -> Flask:
        return create_app(
            {
                "TESTING": True,
                **s3_engine.settings(s3_bucket),
                "MPUFLASK_MIN_PART_SIZE": MIN_PART,
                "MPUFLASK_S3_SPOOL_DIR": str(spool_dir),
                # The engine requests these tests pin are the store's own;
                # the per-identity quota adds a listing of the records (and a
                # read of each) to every create: docs/scale-out.md.
                "MPUFLASK_MAX_OPEN_UPLOADS": 0,
                **settings,
            }
        )

    return make


def s3_bucket_of(app: Flask) -> S3Bucket:
    """The app's store, an :class:`S3Bucket`."""
    bucket: S3Bucket = app.extensions["mpuflask"].bucket
    return bucket
