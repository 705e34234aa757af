"""The one exception type for mistakes a user can fix (bad input, bad arguments)."""

__all__ = ["TrainerError"]


class TrainerError(Exception):
    """A problem the caller can fix; the CLI prints it without a traceback and exits non-zero."""
