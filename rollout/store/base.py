"""The status-store interface, and the commands a person sends to a running rollout."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from mlcanary.rollout.status import RolloutStatus

__all__ = ["Command", "ConflictError", "StatusStore", "StoredStatus"]


class Command(StrEnum):
    PROMOTE = "promote"
    ABORT = "abort"
    PAUSE = "pause"
    RESUME = "resume"


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

    def take_command(self, name: str) -> Command | None:
        """The oldest queued command, removed from the queue."""
        ...

    def names(self) -> list[str]: ...


class ConflictError(RuntimeError):
    """Someone else saved a newer status since it was loaded."""
