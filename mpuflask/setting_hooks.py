"""The setting type that names code: hooks as ``package.module:function``.

Apart from :mod:`mpuflask.setting_types` because it is the one type whose
parsing runs someone else's code (it imports the module named), with its own
ways to fail: a module that cannot be imported, an attribute that is missing
or not callable. Each is one line, as any setting's error.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

from .setting_types import Kind
from .setting_types import items
from .setting_types import shown

IMPORTABLE = (
    "the module must be importable from the server's working directory or installed"
)

_IDENTIFIERS = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
_DOTTED = re.compile(rf"{_IDENTIFIERS}(:{_IDENTIFIERS})?")


def import_callable(path: str) -> Callable[..., Any]:
    """The callable named ``package.module:function`` (or ``package.module.function``).

    Raises ``ValueError`` with one line: the path, and why it cannot be used.
    """
    if not _DOTTED.fullmatch(path) or ("." not in path and ":" not in path):
        raise ValueError(
            f"has {shown(path)}, "
            "which is not a dotted path like package.module:function"
        )
    module_name, _, attribute = (
        path.partition(":") if ":" in path else path.rpartition(".")
    )
    try:
        found: Any = importlib.import_module(module_name)
    except Exception as error:  # any failure of the user's module, as one line
        reason = str(error)
        if not isinstance(error, ImportError):
            reason = f"{type(error).__name__}: {reason}"
        reason = " ".join(reason.split())  # one line
        raise ValueError(
            f"cannot import {shown(path)} ({reason}); {IMPORTABLE}"
        ) from None
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise ValueError(
                f"names {shown(path)}, but module {shown(module_name)} "
                f"has no attribute {shown(attribute)}"
            )
        found = getattr(found, part)
    if not callable(found):
        raise ValueError(f"names {shown(path)}, which is not callable")
    return found  # type: ignore[no-any-return]


def _hooks(value: Any) -> tuple[Callable[..., Any], ...]:
    hooks = []
    for item in items(value):
        if isinstance(item, str):
            hooks.append(import_callable(item.strip()))
        elif callable(item):
            hooks.append(item)
        else:
            raise ValueError(
                f"has {shown(item)}, which is neither a dotted path nor a callable"
            )
    return tuple(hooks)


HOOKS = Kind("`module:callable` list", _hooks)
