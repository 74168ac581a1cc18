"""Errors of the models package that callers tell apart."""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """A request's input does not fit the version's schema. ``field`` is where, as a path such as
    ``instances[3].plan``; the service answers 422 with it."""

    def __init__(self, code: str, message: str, field: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
