"""The status-store port: where a rollout's status survives the controller, and how a person's
command requests reach it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mlcanary.rollout.commands import Command, CommandRequest
from mlcanary.rollout.status import RolloutStatus

__all__ = ["ConflictError", "StatusStore", "StoredStatus"]


@dataclass(frozen=True)
class StoredStatus:
    status: RolloutStatus
    # Opaque, compared only for equality (a Kubernetes resourceVersion is one): every save
    # changes it, and a save naming one that is no longer current is a conflict.
    revision: str


class StatusStore(Protocol):
    def load(self, name: str) -> StoredStatus | None: ...

    def save(self, name: str, status: RolloutStatus, revision: str | None) -> StoredStatus:
        """Persist, all or nothing. ``revision`` is the one loaded (None for a new rollout);
        a save over a newer revision raises ConflictError instead of losing that write."""
        ...

    def request(self, name: str, command: Command) -> None:
        """Queue a person's command for the controller's next tick."""
        ...

    def take_command(self, name: str) -> CommandRequest | None:
        """The oldest request not yet carried out. A store that keeps requests apart from the
        status removes it here; one that keeps it on the rollout object compares it with the
        status's ``lastCommand``, which the engine sets in the decision that carries it out."""
        ...


class ConflictError(RuntimeError):
    """Someone else saved a newer status since it was loaded."""
