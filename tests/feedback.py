"""What a labeling pipeline sends with its labels, for the tests that post feedback."""

from __future__ import annotations

from mlcanary.settings import KeySettings

__all__ = ["labeler_headers"]


def labeler_headers() -> dict[str, str]:
    """The labeler key of this process's environment, the one the servers it starts read."""
    return KeySettings.from_env().labeler_headers()
