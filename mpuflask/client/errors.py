"""What can go wrong in a transfer, as exceptions a caller can tell apart.

Every message is one line of plain words: what failed (the action and the
object's URL, shown without its query), and why. What to try next is left to
the front end (the CLI adds it), which knows its own options.
"""

from __future__ import annotations

import html
import re

#: Longest server text shown in a one-line message.
MAX_TEXT = 300
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


class ClientError(Exception):
    """Base of every client failure; ``str()`` is a message for a person.

    ``tries``: how many times the failed request was sent (shown when > 1).
    """

    tries = 1

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} (tried {self.tries} times)" if self.tries > 1 else text


class ServerRefused(ClientError):
    """The server answered a status that retrying cannot change (or retries ran out).

    ``text`` is the server's own message, as it wrote it: it names the cause
    (for example ``uploadPart: The specified multipart upload does not
    exist. (10024)``). The message shows it on one line (an HTML error page
    from a proxy by its title).
    """

    def __init__(
        self, method: str, action: str, status: int, text: str, where: str = ""
    ) -> None:
        self.method = method
        self.action = action
        self.status = status
        self.text = text.strip()
        self.where = where
        what = f"{action} {where}" if where else action
        super().__init__(f"{what} answered {status}: {one_line(self.text)}")

    @property
    def r2_code(self) -> int | None:
        """The R2 error code at the end of the text (``... (10024)``), if any."""
        text = self.text
        if text.endswith(")") and "(" in text:
            code = text[text.rfind("(") + 1 : -1]
            if code.isdigit():
                return int(code)
        return None


class TransferFailed(ClientError):
    """The connection kept failing (refused, reset, timed out) past every retry.

    ``kind``: ``refused``, ``dns``, ``connect``, ``connect-timeout``,
    ``read-timeout``, ``broken``, ``tls`` or ``data`` (the answer was not what
    was asked for); ``host``: the server's ``host:port``.
    """

    def __init__(self, message: str, kind: str = "broken", host: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.host = host


class BadAnswer(ClientError):
    """The server said 200 with an answer of the wrong shape: not mpuflask's."""


class VerificationFailed(ClientError):
    """The bytes the server holds are not the bytes we sent or received."""


class SourceChanged(ClientError):
    """The local file changed while it was being uploaded."""


class Cancelled(ClientError):
    """The transfer was stopped (Ctrl-C, or another part failed for good)."""


def one_line(text: str) -> str:
    """A server's answer as one short line: an HTML page by its title."""
    stripped = text.strip()
    if stripped.startswith("<"):
        title = _TITLE.search(stripped)
        stripped = html.unescape(title.group(1) if title else _TAG.sub(" ", stripped))
    line = _SPACE.sub(" ", stripped).strip()
    if len(line) > MAX_TEXT:
        line = line[: MAX_TEXT - 3].rstrip() + "..."
    return line or "(no message)"
