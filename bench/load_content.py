"""The load bench's content: part bodies sliced from one random buffer, and
the completed objects every client may read back (``load_bench.py``).

Part bodies are slices of one pre-generated random buffer plus a 32-byte tag
unique to (client, upload, part), so every object is distinct while the MD5 of
a slice is computed once and reused (``hashlib`` state copy, then the tag).
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass

MiB = 1 << 20
KiB = 1 << 10
TAG_LEN = 32


@dataclass(frozen=True)
class Segment:
    """``source[start:start + length]``: a piece of an object's expected bytes."""

    source: bytes
    start: int
    length: int

    def view(self) -> memoryview:
        return memoryview(self.source)[self.start : self.start + self.length]


@dataclass(frozen=True)
class Part:
    number: int
    body: Segment  # a slice of the shared buffer
    tag: bytes  # TAG_LEN bytes unique to this part
    md5: str

    @property
    def size(self) -> int:
        return self.body.length + len(self.tag)


class Payload:
    """One random buffer, sliced into part bodies; MD5s of slices are cached."""

    def __init__(self, args: argparse.Namespace) -> None:
        rng = random.Random(args.seed)
        largest = max(args.large_part_max, args.min_part_size)
        self.buffer = rng.randbytes(largest + 16 * MiB)
        self.small_last_max = args.small_last_max
        # Large uploads: 8 part sizes, each at 8 offsets (64 cached MD5 states).
        sizes = sorted(
            {rng.randint(args.large_part_min, args.large_part_max) for _ in range(8)}
        )
        self.large: dict[int, list[int]] = {
            size: [rng.randrange(len(self.buffer) - size) for _ in range(8)]
            for size in sizes
        }
        # Leading parts of small uploads: exactly the minimum part size.
        self.leading_size = args.min_part_size
        self.leading_offsets = [
            rng.randrange(len(self.buffer) - args.min_part_size) for _ in range(16)
        ]
        self._states: dict[tuple[int, int], hashlib._Hash] = {}
        self._lock = threading.Lock()

    def _state(self, offset: int, length: int) -> hashlib._Hash:
        key = (offset, length)
        with self._lock:
            state = self._states.get(key)
        if state is None:
            state = hashlib.md5(memoryview(self.buffer)[offset : offset + length])
            with self._lock:
                self._states.setdefault(key, state)
        return state

    def part(
        self, number: int, offset: int, size: int, tag: bytes, *, cache: bool
    ) -> Part:
        """Part ``number`` of ``size`` bytes: the buffer at ``offset``, then ``tag``."""
        length = size - len(tag)
        view = memoryview(self.buffer)[offset : offset + length]
        digest = self._state(offset, length).copy() if cache else hashlib.md5(view)
        digest.update(tag)
        return Part(
            number, Segment(self.buffer, offset, length), tag, digest.hexdigest()
        )

    def small_part(self, number: int, rng: random.Random, tag: bytes) -> Part:
        size = rng.randint(len(tag) + 1, self.small_last_max)
        offset = rng.randrange(len(self.buffer) - size)
        return self.part(number, offset, size, tag, cache=False)


@dataclass(eq=False)
class StoredObject:
    """A completed object: where it is and exactly which bytes it must hold."""

    key: str
    path: str
    etag: str
    content_type: str
    segments: list[Segment]
    starts: list[int]
    size: int
    readers: int = 0

    @classmethod
    def from_parts(
        cls, key: str, path: str, etag: str, content_type: str, parts: Sequence[Part]
    ) -> StoredObject:
        segments: list[Segment] = []
        for part in parts:
            segments.append(part.body)
            segments.append(Segment(part.tag, 0, len(part.tag)))
        starts, position = [], 0
        for segment in segments:
            starts.append(position)
            position += segment.length
        return cls(key, path, etag, content_type, segments, starts, position)

    def matches(self, position: int, data: memoryview) -> bool:
        """Whether ``data`` is this object's bytes from ``position`` (memcmp)."""
        if position + len(data) > self.size:
            return False
        index = bisect.bisect_right(self.starts, position) - 1
        done = 0
        while done < len(data):
            segment = self.segments[index]
            within = position + done - self.starts[index]
            count = min(len(data) - done, segment.length - within)
            piece = data[done : done + count]
            if not segment.source.startswith(piece, segment.start + within):
                return False
            done += count
            index += 1
        return True


class Registry:
    """Completed objects, shared by all clients; deletes never race a reader."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: list[StoredObject] = []

    def add(self, obj: StoredObject) -> None:
        with self._lock:
            self._objects.append(obj)

    def __len__(self) -> int:
        with self._lock:
            return len(self._objects)

    def borrow(self, rng: random.Random) -> StoredObject | None:
        with self._lock:
            if not self._objects:
                return None
            obj = rng.choice(self._objects)
            obj.readers += 1
            return obj

    def give_back(self, obj: StoredObject) -> None:
        with self._lock:
            obj.readers -= 1

    def take_for_delete(self, rng: random.Random) -> StoredObject | None:
        """Remove an object no one is reading, so no GET may see it vanish."""
        with self._lock:
            for _ in range(8):
                if not self._objects:
                    return None
                index = rng.randrange(len(self._objects))
                obj = self._objects[index]
                if obj.readers == 0:
                    self._objects[index] = self._objects[-1]
                    self._objects.pop()
                    return obj
            return None
