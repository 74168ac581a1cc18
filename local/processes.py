"""A registry of detached processes, by name, in one JSON file.

A recorded process is reused only if its pid is alive and its health URL answers; anything else
is started again. Stopping kills the process group, so a server's workers go with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from mlcanary.local.file_store import atomic_write

__all__ = ["ManagedProcess", "ProcessRegistry", "ProcessStartError"]


# Processes this interpreter started, kept so that stopping one also reaps it. A process started
# by an earlier controller (before a restart) is not our child: it is signalled by pid only.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class ProcessStartError(RuntimeError):
    """A process exited or never became healthy; the message carries its log's tail."""


@dataclass(frozen=True)
class ManagedProcess:
    name: str
    pid: int
    url: str
    health_path: str
    log: str


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _healthy(url: str, path: str) -> bool:
    try:
        return httpx.get(f"{url}{path}", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _tail(log: Path, lines: int = 25) -> str:
    if not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


class ProcessRegistry:
    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._file = directory / "processes.json"

    def _read(self) -> dict[str, ManagedProcess]:
        if not self._file.exists():
            return {}
        return {k: ManagedProcess(**v) for k, v in json.loads(self._file.read_text()).items()}

    def _write(self, entries: dict[str, ManagedProcess]) -> None:
        document = {k: asdict(v) for k, v in entries.items()}
        atomic_write(self._file, json.dumps(document, indent=2).encode())

    def get(self, name: str) -> ManagedProcess | None:
        entry = self._read().get(name)
        if entry is None or not _alive(entry.pid) or not _healthy(entry.url, entry.health_path):
            return None
        return entry

    def ensure(
        self,
        name: str,
        command: Sequence[str],
        url: str,
        health_path: str,
        *,
        env: dict[str, str] | None = None,
        timeout_s: float = 180.0,
        on_start: Callable[[str], None] | None = None,
    ) -> ManagedProcess:
        """The running process of that name, or a new one started from `command`."""
        running = self.get(name)
        if running is not None:
            return running
        self.stop(name)
        log = self._dir / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        if on_start is not None:
            on_start(name)
        with log.open("ab") as out:
            process = subprocess.Popen(
                list(command),
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _CHILDREN[process.pid] = process
        entry = ManagedProcess(name, process.pid, url, health_path, str(log))
        entries = self._read()
        entries[name] = entry
        self._write(entries)
        deadline = time.monotonic() + timeout_s
        while not _healthy(url, health_path):
            if process.poll() is not None:
                raise ProcessStartError(f"{name} exited with {process.returncode}:\n{_tail(log)}")
            if time.monotonic() > deadline:
                self.stop(name)
                raise ProcessStartError(f"{name} not healthy after {timeout_s:.0f}s:\n{_tail(log)}")
            time.sleep(0.25)
        return entry

    def stop(self, name: str, grace_s: float = 15.0) -> None:
        entries = self._read()
        entry = entries.pop(name, None)
        if entry is not None and _alive(entry.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(entry.pid, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while _alive(entry.pid) and time.monotonic() < deadline:
                _reap(entry.pid)
                time.sleep(0.1)
            if _alive(entry.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(entry.pid, signal.SIGKILL)
                _reap(entry.pid)
        if entry is not None and (child := _CHILDREN.pop(entry.pid, None)) is not None:
            child.wait()
        self._write(entries)

    def names(self) -> list[str]:
        return sorted(self._read())


def _reap(pid: int) -> None:
    """Collect the exit status if the process is our child, so it does not linger as a zombie."""
    child = _CHILDREN.get(pid)
    if child is not None:
        child.poll()
        return
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
