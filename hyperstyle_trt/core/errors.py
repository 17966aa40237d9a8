"""The one user-facing error type, and the one way to shorten any exception to a line. CLIs catch HsError and print
one line; internal invariants use assert."""

from __future__ import annotations


class HsError(Exception):
    """A user error: bad input, bad checkpoint, missing optional dependency. The message is one line."""


def one_line(exc: BaseException | str, limit: int = 300) -> str:
    """The first non-empty line of `exc`'s message, at most `limit` characters; the exception's type name when the
    message is empty. Never raises (an empty message, a message of blank lines, a `__str__` that itself fails)."""
    if isinstance(exc, str):
        text, name = exc, ""
    else:
        name = type(exc).__name__
        try:
            text = str(exc)
        except Exception:  # a broken __str__ must not hide the original error
            text = ""
    for line in text.splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[: max(limit - 3, 0)] + "..."
    return name
