"""gunicorn's access-log fields are built only when the access log writes."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from mpuflask.gunicorn_logging import Logger


def _logger(level: int, built: list[Any]) -> Logger:
    log: Logger = Logger.__new__(Logger)
    log.access_log = logging.getLogger(f"test.gunicorn.access.{level}")
    log.access_log.setLevel(level)
    log.access_log.propagate = False
    # As gunicorn.conf.py configures it: a logconfig_dict, no access log file.
    log.cfg = SimpleNamespace(
        accesslog=None,
        logconfig=None,
        logconfig_dict={"version": 1},
        logconfig_json=None,
        syslog=False,
        disable_redirect_access_to_syslog=False,
        access_log_format="%(s)s",
    )

    def atoms(*args: Any) -> dict[str, str]:
        built.append(args)
        return {"s": "200"}

    log.atoms = atoms  # type: ignore[method-assign]
    return log


@pytest.mark.parametrize(
    ("level", "builds"), [(logging.WARNING, False), (logging.INFO, True)]
)
def test_access_fields_are_built_only_for_an_access_log_that_writes(
    level: int, builds: bool
) -> None:
    built: list[Any] = []
    _logger(level, built).access(object(), object(), {}, 0.001)
    assert bool(built) is builds
