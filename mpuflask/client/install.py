"""The command that installs the client's dependencies, for this very install.

``pip install 'mpuflask[client]'`` works only where mpuflask came from a
package index; from a clone it fails (mpuflask is not on PyPI). pip records
where a package came from (``direct_url.json``, PEP 610), so the hint names
what works here: the clone's folder, or the dependencies themselves. It runs
pip through this interpreter (``python -m pip``), so it installs into the
environment that runs mpuflask, not whichever ``pip`` is first on the PATH.
No ``requests`` here: this runs exactly when it is missing.
"""

from __future__ import annotations

import json
import shlex
import sys
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote
from urllib.parse import urlsplit

#: The ``client`` extra's requirements (pyproject.toml), for installs that
#: cannot name the extra.
CLIENT_REQUIREMENTS = ("requests>=2.31", "tqdm>=4.66")


def install_command(direct_url: str | None, *, installed: bool = True) -> str:
    """The shell command that adds the client's dependencies to an install.

    ``direct_url``: the text of mpuflask's ``direct_url.json`` (None: it came
    from an index). ``installed`` False: mpuflask runs from a source tree
    without being installed, so only the dependencies can be named.
    """
    pip = f"{shlex.quote(sys.executable)} -m pip install"
    if installed and direct_url is None:
        return f"{pip} 'mpuflask[client]'"
    folder, editable = _local_folder(direct_url) if installed else (None, False)
    if folder is not None:
        target = shlex.quote(f"{folder}[client]")
        return f"{pip} {'-e ' if editable else ''}{target}"
    return f"{pip} {' '.join(shlex.quote(r) for r in CLIENT_REQUIREMENTS)}"


def missing_dependency(name: str | None) -> str:
    """The one-line message for a missing client dependency, for this install."""
    direct_url, installed = _install_source()
    command = install_command(direct_url, installed=installed)
    return f"the mpuflask client needs {name}; install it with: {command}"


def _install_source() -> tuple[str | None, bool]:
    """mpuflask's ``direct_url.json``, and whether it is installed at all.

    Several copies may be visible: a clone's ``mpuflask.egg-info`` when run
    from its folder, beside the installed ``.dist-info``. The first record
    pip wrote wins; else a copy whose folder holds ``pyproject.toml`` is a
    source tree, and its folder is what to install from.
    """
    found = list(metadata.distributions(name="mpuflask"))
    if not found:
        return None, False
    for distribution in found:
        if text := distribution.read_text("direct_url.json"):
            return text, True
    for distribution in found:
        root = Path(str(distribution.locate_file("")))
        if (root / "pyproject.toml").is_file():
            return json.dumps({"url": root.resolve().as_uri(), "dir_info": {}}), True
    return None, True


def _local_folder(direct_url: str | None) -> tuple[str | None, bool]:
    """The local folder mpuflask was installed from, and whether editable."""
    try:
        record = json.loads(direct_url or "")
    except ValueError:
        return None, False
    if not isinstance(record, dict) or "dir_info" not in record:
        return None, False  # a wheel or an archive, a VCS checkout
    url = urlsplit(str(record.get("url", "")))
    if url.scheme != "file":
        return None, False
    editable = bool((record.get("dir_info") or {}).get("editable"))
    return unquote(url.path), editable
