"""The one exception type for mistakes a user can fix (bad input, bad arguments)."""

__all__ = ["NoRowsError", "TrainerError"]


class TrainerError(Exception):
    """A problem the caller can fix; the CLI prints it without a traceback and exits non-zero."""


class NoRowsError(TrainerError):
    """A table has no rows in the requested date range (a caller may read that as "nothing new")."""
