"""The one user-facing error type. CLIs catch it and print one line; internal invariants use assert."""


class HsError(Exception):
    """A user error: bad input, bad checkpoint, missing optional dependency. The message is one line."""
