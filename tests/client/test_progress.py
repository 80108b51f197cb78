"""Progress: a bar on a terminal, a line per tenth elsewhere, nothing if quiet."""

from __future__ import annotations

import io

from mpuflask.client.progress import BarProgress
from mpuflask.client.progress import LineProgress
from mpuflask.client.progress import NoProgress
from mpuflask.client.progress import progress_for


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_lines_per_tenth_with_a_retry_taken_back() -> None:
    out = io.StringIO()
    progress = LineProgress("upload f", out)
    progress.start(1000, done=300)
    for _ in range(7):
        progress.update(100)
        progress.update(-50)  # a failed try taken back
        progress.update(50)
    progress.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("upload f: 30% 300 B of 1000 B (")
    assert [line.split()[2] for line in lines] == [f"{p}%" for p in range(30, 101, 10)]


def test_the_reporter_fits_the_stream() -> None:
    assert isinstance(progress_for("x", quiet=True, stream=Terminal()), NoProgress)
    assert isinstance(
        progress_for("x", quiet=False, stream=io.StringIO()), LineProgress
    )
    assert isinstance(progress_for("x", quiet=False, stream=Terminal()), BarProgress)


def test_the_bar_shows_bytes_and_rate() -> None:
    out = Terminal()
    bar = progress_for("upload f", quiet=False, stream=out)
    bar.start(4 * 1024 * 1024)
    bar.update(4 * 1024 * 1024)
    bar.close()
    text = out.getvalue()
    assert "upload f: 100%" in text and "4.00M/4.00M" in text and "B/s" in text


def test_nothing_is_reported_before_the_size_is_known() -> None:
    """A download that failed before its first answer printed "100% 0 B of 0 B"."""
    out = io.StringIO()
    progress = LineProgress("download f", out)
    progress.update(0)
    progress.close()
    assert out.getvalue() == ""


def test_an_empty_transfer_is_100_percent() -> None:
    out = io.StringIO()
    progress = LineProgress("download f", out)
    progress.start(0)
    progress.close()
    assert out.getvalue().startswith("download f: 100% 0 B of 0 B (")
    assert len(out.getvalue().splitlines()) == 1


def test_a_transfer_of_unknown_size_reports_bytes_not_percents() -> None:
    """Standard input: at most one line per interval, and the total at the end."""
    out = io.StringIO()
    progress = LineProgress("upload stdin", out, interval=3600.0)
    progress.start(None)
    for _ in range(5):
        progress.update(1024)
    progress.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("upload stdin: 5.0 KiB (")


def test_the_bar_takes_an_unknown_size() -> None:
    out = Terminal()
    bar = progress_for("upload stdin", quiet=False, stream=out)
    bar.start(None)
    bar.update(4 * 1024 * 1024)
    bar.close()
    assert "upload stdin: 4.00MB" in out.getvalue()
