"""The per-app state mpuflask keeps in ``app.extensions["mpuflask"]``."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field

from flask import current_app

from .routing import ActionView
from .storage import Bucket


@dataclass
class MpuFlask:
    """The store and the action table of one app; no module-level state."""

    bucket: Bucket
    actions: dict[tuple[str, str], ActionView] = field(default_factory=dict)


def mpuflask() -> MpuFlask:
    """The extension state of the current app."""
    state: MpuFlask = current_app.extensions["mpuflask"]
    return state


def bucket() -> Bucket:
    """The current app's store."""
    return mpuflask().bucket
