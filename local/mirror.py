"""The single-machine mirror: one file per model that every local server reads.

Why a file in the platform's state directory: the platform starts every server with that
directory as its ``shadow_dir``, so all of a machine's servers (each of their workers) see one
setting without any connection to the controller (`mlcanary.serving.mirror_file`). The file is
written aside and renamed into place, so that a server reads either the old setting or the new
one, never half of either.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from mlcanary.rollout.mirror.base import MirrorTarget, MirrorUnavailableError
from mlcanary.serving.mirror_file import MirrorSetting, mirror_file_name, render_setting

__all__ = ["LocalMirror", "setting_for"]


def setting_for(target: MirrorTarget, url: str) -> MirrorSetting:
    """What the servers read for ``target``, its canary served at ``url``."""
    return MirrorSetting(
        stable=target.stable, canary=target.canary, url=url, fraction=target.fraction
    )


class LocalMirror:
    """Writes ``{directory}/{model}.json``; a local backend is already the canary's URL."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, model: str) -> Path:
        return self.directory / mirror_file_name(model)

    def set(self, model: str, target: MirrorTarget | None) -> None:
        try:
            setting = None if target is None else setting_for(target, target.backend)
        except ValueError as exc:
            problem = f"the canary's address cannot be copied to: {exc}"
            raise MirrorUnavailableError(problem) from exc
        content = render_setting(setting)
        path = self.path(model)
        try:
            if path.exists() and path.read_bytes() == content:
                return
            self.directory.mkdir(parents=True, exist_ok=True)
            staging = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
            try:
                staging.write_bytes(content)
                os.replace(staging, path)
            finally:
                staging.unlink(missing_ok=True)
        except OSError as exc:
            raise MirrorUnavailableError(f"cannot write {path}: {exc}") from exc
