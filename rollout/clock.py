"""The wall clock the controllers and their adapters read, in UTC: one function that tests replace
with a fake clock (every user takes it as a ``clock`` argument)."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["utcnow"]


def utcnow() -> datetime:
    return datetime.now(UTC)
