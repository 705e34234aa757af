"""The exceptions the app turns into clean JSON answers (never a stack trace)."""

from __future__ import annotations

__all__ = ["IntegrityError", "ModelNotReady", "RegistryFormatError", "RequestError"]


class RequestError(Exception):
    """A request the caller can fix: answered with ``status`` and the field it is about.

    ``field`` is a path into the request body, e.g. ``instances[2].future[0].date``.
    """

    def __init__(self, field: str, message: str, status: int = 422) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status


class ModelNotReady(Exception):
    """No verified model is loaded (yet): answered with 503 and the reason."""


class RegistryFormatError(ModelNotReady):
    """The registry index exists but cannot be read or is not shaped as its format says.

    Unlike a registry that is missing or an alias not set yet (the normal state before the
    first promotion), this is a fault someone has to fix: ``/ready`` reports it in
    ``last_error``.
    """


class IntegrityError(Exception):
    """A model folder's files differ from their recorded sha256: the model is refused."""
