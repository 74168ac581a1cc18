"""Status as JSON files in a directory: ``NAME.status.json`` and ``NAME.commands/``.

Every save writes a temporary file, fsyncs it and renames it over the old one (then fsyncs the
directory), so a controller killed at any instant leaves either the old status or the new one,
never half of each. Commands are one file each, named by time, so that two people's commands
queue instead of overwriting each other.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from mlcanary.rollout.commands import Command, CommandRequest
from mlcanary.rollout.status import RolloutStatus
from mlcanary.rollout.store.base import ConflictError, StoredStatus

__all__ = ["FileStatusStore", "atomic_write"]


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with staging.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staging, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class FileStatusStore:
    def __init__(self, directory: Path) -> None:
        self._dir = directory

    def _status_path(self, name: str) -> Path:
        return self._dir / f"{name}.status.json"

    def _commands(self, name: str) -> Path:
        return self._dir / f"{name}.commands"

    def load(self, name: str) -> StoredStatus | None:
        path = self._status_path(name)
        if not path.exists():
            return None
        document = json.loads(path.read_text())
        return StoredStatus(
            RolloutStatus.model_validate(document["status"]), str(document["revision"])
        )

    def save(self, name: str, status: RolloutStatus, revision: str | None) -> StoredStatus:
        current = self.load(name)
        current_revision = current.revision if current is not None else None
        if current_revision != revision:
            raise ConflictError(
                f"status of {name} is at revision {current_revision}, not {revision}"
            )
        stored = StoredStatus(status, str(int(revision or 0) + 1))
        document = {"revision": int(stored.revision), "status": status.model_dump(mode="json")}
        atomic_write(self._status_path(name), json.dumps(document, indent=2).encode())
        return stored

    def request(self, name: str, command: Command) -> None:
        stamp = f"{time.time_ns():020d}-{os.getpid()}"
        atomic_write(self._commands(name) / f"{stamp}.cmd", command.value.encode())

    def take_command(self, name: str) -> CommandRequest | None:
        directory = self._commands(name)
        if not directory.is_dir():
            return None
        for path in sorted(directory.glob("*.cmd")):
            text = path.read_text().strip()
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return CommandRequest(text, f"{text}:{path.stem}")
        return None

    def names(self) -> list[str]:
        if not self._dir.is_dir():
            return []
        return sorted(p.name.removesuffix(".status.json") for p in self._dir.glob("*.status.json"))
