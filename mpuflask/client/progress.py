"""Progress reports: a bar on a terminal, plain lines in a log, or nothing.

Transfers call :meth:`Progress.update` from many threads with byte counts
(negative when a failed try is taken back), so every reporter is thread-safe.
The total is None when it is known only at the end (standard input).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import IO
from typing import NoReturn
from typing import Protocol


class Progress(Protocol):
    """What a transfer tells about itself; bring your own (a GUI, a log)."""

    def start(self, total: int | None, done: int = 0) -> None:
        """``total`` bytes to transfer (None: unknown), ``done`` already there."""

    def update(self, count: int) -> None:
        """``count`` more bytes moved (negative: a retried try taken back)."""

    def close(self) -> None:
        """The transfer ended (well or not)."""


class NoProgress:
    """Reports nothing (``--quiet``, and the library's default)."""

    def start(self, total: int | None, done: int = 0) -> None:
        pass

    def update(self, count: int) -> None:
        pass

    def close(self) -> None:
        pass


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


class LineProgress:
    """One plain line per tenth of the transfer: readable in CI logs and pipes.

    Of a transfer of unknown size, one line every ``interval`` seconds at
    most. Nothing at all until :meth:`start`: a transfer that failed before
    it knew its size reports no "100% of 0 B".
    """

    def __init__(
        self, label: str, stream: IO[str] | None = None, interval: float = 10.0
    ) -> None:
        self._label = label
        self._stream = stream if stream is not None else sys.stderr
        self._interval = interval
        self._lock = threading.Lock()
        self._total: int | None = 0
        self._done = 0
        self._start_done = 0
        self._reported = -1
        self._started: float | None = None
        self._last = 0.0
        self._closed = False

    def start(self, total: int | None, done: int = 0) -> None:
        with self._lock:
            self._total, self._done, self._start_done = total, done, done
            self._started = self._last = time.monotonic()
            if total is not None:
                self._report()

    def update(self, count: int) -> None:
        with self._lock:
            self._done += count
            self._report()

    def close(self) -> None:
        with self._lock:
            if not self._closed and self._started is not None:
                self._closed = True
                self._report(final=True)

    def _report(self, final: bool = False) -> None:
        if self._started is None:
            return
        now = time.monotonic()
        rate = (self._done - self._start_done) / max(now - self._started, 1e-9)
        if self._total is None:
            if final or now - self._last >= self._interval:
                self._last = now
                self._print(f"{_size(self._done)} ({_size(rate)}/s)")
            return
        tenth = 10 if not self._total else self._done * 10 // self._total
        if tenth <= self._reported and not final:
            return
        if final and tenth == self._reported == 10:
            return
        self._reported = max(tenth, self._reported)
        percent = 100 if not self._total else self._done * 100 // self._total
        self._print(
            f"{percent}% {_size(self._done)} of {_size(self._total)} ({_size(rate)}/s)"
        )

    def _print(self, text: str) -> None:
        print(f"{self._label}: {text}", file=self._stream, flush=True)


class BarProgress:
    """A tqdm bar with bytes, rate and ETA, for a terminal."""

    def __init__(self, label: str, stream: IO[str] | None = None) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self._label = label
        self._stream = stream if stream is not None else sys.stderr
        self._bar: tqdm[NoReturn] | None = None
        self._lock = threading.Lock()

    def start(self, total: int | None, done: int = 0) -> None:
        if self._bar is not None:  # started again (a whole-body GET retried)
            self._bar.reset(total)
            self._bar.update(done)
            return
        self._bar = self._tqdm(
            total=total,
            initial=done,
            desc=self._label,
            file=self._stream,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            dynamic_ncols=True,
        )

    def update(self, count: int) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.update(count)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def progress_for(label: str, *, quiet: bool, stream: IO[str] | None = None) -> Progress:
    """The reporter a command line wants: none, a bar on a TTY, else lines."""
    if quiet:
        return NoProgress()
    out = stream if stream is not None else sys.stderr
    if out.isatty():
        try:
            return BarProgress(label, out)
        except ImportError:
            pass  # tqdm is optional: fall back to plain lines
    return LineProgress(label, out)
