"""In-memory status store: the test double, with the same revision rules as the real ones."""

from __future__ import annotations

import itertools
from collections import defaultdict, deque

from mlcanary.rollout.commands import Command, CommandRequest
from mlcanary.rollout.status import RolloutStatus
from mlcanary.rollout.store.base import ConflictError, StoredStatus

__all__ = ["MemoryStatusStore"]


class MemoryStatusStore:
    def __init__(self) -> None:
        self._statuses: dict[str, StoredStatus] = {}
        self._commands: defaultdict[str, deque[CommandRequest]] = defaultdict(deque)
        self._ids = itertools.count(1)
        self.saves = 0  # for tests: how many writes a scenario made

    def load(self, name: str) -> StoredStatus | None:
        return self._statuses.get(name)

    def save(self, name: str, status: RolloutStatus, revision: str | None) -> StoredStatus:
        current = self._statuses.get(name)
        if (current.revision if current else None) != revision:
            raise ConflictError(f"status of {name} changed since revision {revision}")
        stored = StoredStatus(status, str(int(revision or 0) + 1))
        self._statuses[name] = stored
        self.saves += 1
        return stored

    def request(self, name: str, command: Command) -> None:
        self._commands[name].append(
            CommandRequest(command.value, f"{command.value}:{next(self._ids)}")
        )

    def take_command(self, name: str) -> CommandRequest | None:
        queue = self._commands[name]
        return queue.popleft() if queue else None
