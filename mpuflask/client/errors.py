"""What can go wrong in a transfer, as exceptions a caller can tell apart."""

from __future__ import annotations


class ClientError(Exception):
    """Base of every client failure; ``str()`` is a message for a person."""


class ServerRefused(ClientError):
    """The server answered a status that retrying cannot change (or retries ran out).

    ``text`` is the server's own message, shown as is: it names the cause
    (for example ``uploadPart: The specified multipart upload does not
    exist. (10024)``).
    """

    def __init__(self, method: str, action: str, status: int, text: str) -> None:
        self.method = method
        self.action = action
        self.status = status
        self.text = text.strip()
        super().__init__(f"{action} answered {status}: {self.text}")

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
    """The connection kept failing (refused, reset, timed out) past every retry."""


class VerificationFailed(ClientError):
    """The bytes the server holds are not the bytes we sent or received."""


class SourceChanged(ClientError):
    """The local file changed while it was being uploaded."""


class Cancelled(ClientError):
    """The transfer was stopped (Ctrl-C, or another part failed for good)."""
