"""The crash harness's model: what clients asked for and were told.

Every byte a client sends is generated from ``(seed, salt)`` (:class:`PartSpec`),
so the model knows the content, MD5s and etag of every version it ever asked
for. :class:`Model` records each write to a key (a complete or a delete) with
the instants its request started and ended and how it ended, each read made
during the run, and the uploads the clients hold; :meth:`Model.may_see` is the
verdict the checks are built on (see the package docstring).
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
from collections import Counter
from dataclasses import dataclass
from dataclasses import field
from functools import lru_cache

from tests.oracle import etag_from_md5s
from tests.oracle import md5

#: How a request ended, seen from the client.
OK = "ok"  # a whole response arrived
REFUSED = "refused"  # no connection: the request never reached a server
CUT = "cut"  # connection lost after sending: it may or may not have happened
TIMEOUT = "timeout"  # no answer in time: it may still happen later

#: What became of a write.
PENDING = "pending"
ACKED = "acked"
UNKNOWN = "unknown"
FAILED = "failed"  # refused: it did nothing
HAPPENED = "happened"  # unknown, then resolved: published
NOT_HAPPENED = "not happened"  # unknown, then resolved: rolled back
DEFINITE = frozenset({ACKED, HAPPENED})
IMPOSSIBLE = frozenset({FAILED, NOT_HAPPENED})

#: R2's code when an uploadId is unknown, finished or aborted.
NO_SUCH_UPLOAD = "(10024)"


# -- content ----------------------------------------------------------------------


@dataclass(frozen=True)
class PartSpec:
    """The bytes of one part attempt: ``size`` bytes generated from ``salt``."""

    salt: str
    size: int

    def data(self, seed: int) -> bytes:
        return _part_bytes(seed, self.salt, self.size)

    def md5(self, seed: int) -> str:
        return _part_md5(seed, self.salt, self.size)


@lru_cache(maxsize=512)
def _part_bytes(seed: int, salt: str, size: int) -> bytes:
    return random.Random(f"mpuflask-crash:{seed}:{salt}").randbytes(size)


@lru_cache(maxsize=65536)
def _part_md5(seed: int, salt: str, size: int) -> str:
    return md5(_part_bytes(seed, salt, size))


@dataclass(frozen=True)
class Version:
    """One object version a client asked for (a complete's parts, in order)."""

    vid: int
    key: str
    etag: str  # unquoted
    content_type: str
    parts: tuple[PartSpec, ...]
    size: int
    sha256: str

    def content(self, seed: int) -> bytes:
        return b"".join(part.data(seed) for part in self.parts)


@dataclass(frozen=True)
class RangeSpec:
    """``bytes=first-last``, ``bytes=first-`` or ``bytes=-suffix``."""

    first: int | None
    last: int | None

    @property
    def header(self) -> str:
        return f"bytes={'' if self.first is None else self.first}-" + (
            "" if self.last is None else str(self.last)
        )

    def bounds(self, size: int) -> tuple[int, int]:
        """The inclusive byte range RFC 9110 selects in ``size`` bytes."""
        if self.first is None:
            assert self.last is not None
            return max(0, size - self.last), size - 1
        if self.last is None:
            return self.first, size - 1
        return self.first, min(self.last, size - 1)


# -- the record ---------------------------------------------------------------------


@dataclass(eq=False)
class Write:
    """A complete (``vid``) or a delete (``vid`` None) of one key."""

    vid: int | None
    start: float
    end: float = math.inf
    state: str = PENDING
    what: str = ""


@dataclass(eq=False)
class Slot:
    """One part number of an upload: what the client wants there, what may be."""

    number: int
    spec: PartSpec
    acked: bool = False  # ``spec`` was acknowledged
    must_exist: bool = False  # some attempt was acknowledged
    #: etag -> size of what mpu-listparts may show for this part number.
    acceptable: dict[str, int] = field(default_factory=dict)


@dataclass(eq=False)
class Job:
    """One upload as a client sees it."""

    jid: int
    key: str
    content_type: str
    part_size: int  # of every part but the last
    slots: list[Slot]
    upload_id: str | None = None
    replaced: bool = False
    closed: bool = False  # no longer the client's to continue


@dataclass(frozen=True)
class Reply:
    """One request's end: how (:data:`OK`, ...), when, and the answer if any."""

    outcome: str
    start: float
    end: float
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str = ""


@dataclass(frozen=True)
class Observation:
    """A GET made during the run, judged at the next restart."""

    key: str
    vid: int | None
    start: float
    end: float
    what: str


class Model:
    """Every version asked for, every write and read, and the open uploads.

    Clients change it under :attr:`lock`; the checks read and resolve it
    while the clients are parked.
    """

    def __init__(self, seed: int, keys: list[str]) -> None:
        self.seed = seed
        self.keys = keys
        self.lock = threading.Lock()
        self.versions: dict[str, Version] = {}  # by etag
        self.writes: dict[str, list[Write]] = {
            key: [Write(None, -math.inf, -math.inf, ACKED, "initial")] for key in keys
        }
        self.observations: list[Observation] = []
        self.open_jobs: dict[str, Job] = {}  # by uploadId
        self.resumable: list[Job] = []
        #: Uploads whose complete (its write) or abort (None) was cut by a kill.
        self.to_resolve: list[tuple[Job, Write | None]] = []
        self.unknown_creates: Counter[str] = Counter()
        self.next_id = 0

    def new_id(self) -> int:
        with self.lock:
            self.next_id += 1
            return self.next_id

    def version_of(self, job: Job) -> Version:
        """The version completing ``job`` now would publish (recorded once)."""
        parts = tuple(slot.spec for slot in job.slots)
        etag = etag_from_md5s(part.md5(self.seed) for part in parts)
        with self.lock:
            known = self.versions.get(etag)
            if known is not None:
                return known
            self.next_id += 1
            content = b"".join(part.data(self.seed) for part in parts)
            version = Version(
                self.next_id,
                job.key,
                etag,
                job.content_type,
                parts,
                len(content),
                hashlib.sha256(content).hexdigest(),
            )
            self.versions[etag] = version
            return version

    def take_resumable(self) -> Job | None:
        with self.lock:
            return self.resumable.pop() if self.resumable else None

    # -- the verdicts ---------------------------------------------------------------

    def may_see(self, key: str, vid: int | None, start: float, end: float) -> bool:
        """Whether a read over [start, end] may see the state ``vid`` (None: absent)."""
        writes = self.writes[key]
        definite = [w for w in writes if w.state in DEFINITE]
        for write in writes:
            if write.vid != vid or write.state in IMPOSSIBLE or write.start >= end:
                continue
            if any(d.start > write.end and d.end < start for d in definite):
                continue  # surely overwritten before the read began
            return True
        return False

    def explain(self, key: str) -> str:
        """The key's recent writes, for a violation's message."""
        recent = self.writes[key][-6:]
        return "; ".join(
            f"{w.what or 'initial'} [{w.state}] vid={w.vid}" for w in recent
        )

    def compact(self) -> None:
        """Forget writes no later read may see (nothing is in flight now)."""
        for key, writes in self.writes.items():
            definite = [w for w in writes if w.state in DEFINITE]
            self.writes[key] = [
                w
                for w in writes
                if w.state not in IMPOSSIBLE
                and not any(d.start > w.end for d in definite)
            ]
