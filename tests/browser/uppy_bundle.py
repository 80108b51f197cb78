"""Uppy's own published bundle, fetched from the npm registry at test time.

``npm pack uppy@<UPPY_VERSION>`` downloads the package exactly as published;
its sha512 is checked against the pinned integrity (what ``npm view
uppy@<version> dist.integrity`` prints), then ``package/dist/uppy.min.mjs``
and ``uppy.min.css`` are taken out into a cache folder (the pytest cache).
Nothing of Uppy is ever committed to this repository.

Uppy 5 is pinned, not the newest (6): Uppy 6 rewrote ``@uppy/aws-s3`` around
an S3 XML client and dropped the custom callbacks (createMultipartUpload,
signPart, listParts, ...) that let it talk to a non-S3 API like mpuflask's.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import tarfile
from pathlib import Path

UPPY_VERSION = "5.2.4"
UPPY_INTEGRITY = (
    "sha512-1btgAGUb7Tu7GympmA9XkyGcXBSM93d1FA36J6pY4lr6a0jMXfvFUg66Dbnm"
    "/Xaq6sFvm8KwSPJF46d8Ng0E8Q=="
)
#: The files of the tarball the test page loads.
FILES = ("uppy.min.mjs", "uppy.min.css")
#: npm's own retries make a slow registry slow, not a failure; bounded all the same.
NPM_TIMEOUT = 300.0


class BundleUnavailable(Exception):
    """npm, or the registry, is not there: the Uppy tests skip with this reason."""


def integrity(data: bytes) -> str:
    """The npm ``dist.integrity`` of a tarball's bytes."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def uppy_dist(cache: Path) -> Path:
    """A folder holding Uppy's FILES, fetched once into ``cache``.

    Raises BundleUnavailable when npm is missing or cannot fetch the package,
    and AssertionError when the registry's tarball is not the pinned one.
    """
    dist = cache / f"uppy-{UPPY_VERSION}"
    tarball = cache / f"uppy-{UPPY_VERSION}.tgz"
    if not tarball.exists():
        _npm_pack(cache)
    got = integrity(tarball.read_bytes())
    if got != UPPY_INTEGRITY:
        tarball.unlink()  # fetched again next time
        raise AssertionError(f"uppy@{UPPY_VERSION} from npm is {got}")
    if not all((dist / name).exists() for name in FILES):
        dist.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tarball) as archive:
            for name in FILES:
                member = archive.extractfile(f"package/dist/{name}")
                assert member is not None, name
                (dist / name).write_bytes(member.read())
    return dist


def _npm_pack(cache: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise BundleUnavailable(
            "npm is not installed (Node.js's npm; .ci/run installs it): "
            f"it fetches uppy@{UPPY_VERSION} from the npm registry"
        )
    cache.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            [npm, "pack", f"uppy@{UPPY_VERSION}", "--pack-destination", str(cache)],
            cwd=cache,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BundleUnavailable(
            f"npm pack uppy@{UPPY_VERSION} took over {NPM_TIMEOUT:.0f} s "
            "(is the npm registry reachable?)"
        ) from None
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        # "npm error code ECONNREFUSED", "npm error FetchError: request to ..."
        said = [line for line in lines if " code " in line or "Error:" in line]
        raise BundleUnavailable(
            f"npm pack uppy@{UPPY_VERSION} failed (is the npm registry "
            f"reachable?): {' / '.join(said[:2] or lines[-3:])}"
        )
