"""The mirror interface, and what the servers are told.

Why the servers are told rather than a router configured to mirror: HAProxy has no request
mirroring of its own, and the Gateway API's ``RequestMirror`` and Istio's mirroring send a copy
whose answer nobody sees, so the comparison would need both answers joined later in a store.
The stable server holds its own answer when it sends the copy, compares the two in-process and
counts the outcome per version pair (`mlcanary.serving.shadow`); that pairs the predictions of
one request without a shared database, behind any router.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import Field

from mlcanary.names import NAME_PATTERN
from mlcanary.rollout.observations import CamelModel

__all__ = ["Mirror", "MirrorTarget", "MirrorUnavailableError"]

_NAME = f"^{NAME_PATTERN}$"


class MirrorUnavailableError(RuntimeError):
    """The mirror setting could not be read or written; the controller reports it and tries
    again at its next tick (a shadow step without copies holds, and rolls back at maxDuration)."""


class MirrorTarget(CamelModel):
    """Copy ``fraction`` of the requests that ``stable``'s servers answer to ``canary``, served
    at ``backend`` (what the platform's workloads answered for it: a URL on one machine, a
    Service name in a cluster)."""

    stable: str = Field(pattern=_NAME)
    canary: str = Field(pattern=_NAME)
    backend: str = Field(min_length=1, max_length=2048)
    fraction: float = Field(gt=0, le=1)


class Mirror(Protocol):
    def set(self, model: str, target: MirrorTarget | None) -> None:
        """Make ``target`` the model's mirroring, or stop it with None; idempotent, so the
        controller calls it at every tick. MirrorUnavailableError when it cannot."""
        ...
