"""The file that tells a model's servers to copy requests to a canary: ``{dir}/{model}.json``.

Why a file: every server of a machine (and every worker of each) reads one without any
connection to the controller, and in a cluster a mounted ConfigMap is a file too, which the
kubelet replaces atomically when the controller changes it. The platforms write it
(`mlcanary.local.mirror`, `mlcanary.k8s.mirror`); the servers read it (`mlcanary.serving.shadow`).
``{}`` or no file: no copies.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlcanary.names import NAME_PATTERN

__all__ = ["MirrorFile", "MirrorSetting", "mirror_file_name", "render_setting"]

logger = logging.getLogger("mlcanary.serving")
_NAME = f"^{NAME_PATTERN}$"


class MirrorSetting(BaseModel):
    """Copy ``fraction`` of the requests that ``stable``'s servers answer to ``url``, where
    ``canary`` is served, and compare the answers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stable: str = Field(pattern=_NAME)
    canary: str = Field(pattern=_NAME)
    url: str = Field(pattern=r"^https?://[^/\s]+$")
    fraction: float = Field(gt=0, le=1)


def mirror_file_name(model: str) -> str:
    """The file's name in its directory (and the key in the cluster's ConfigMap)."""
    return f"{model}.json"


def render_setting(setting: MirrorSetting | None) -> bytes:
    return setting.model_dump_json().encode() if setting is not None else b"{}"


class MirrorFile:
    """A model's mirror file as the servers see it, read again when it changes.

    Checked at most every ``every_s`` (a stat, from the request path), so a change reaches
    every server within that time of the file's own update."""

    def __init__(
        self,
        path: Path,
        *,
        every_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._every_s = every_s
        self._clock = clock
        self._checked_at = -float("inf")
        self._stamp: tuple[int, int, int] | None = None
        self._setting: MirrorSetting | None = None

    def current(self) -> MirrorSetting | None:
        now = self._clock()
        if now - self._checked_at < self._every_s:
            return self._setting
        self._checked_at = now
        try:
            # A mounted ConfigMap swaps a symlink: stat follows it to the new file.
            info = os.stat(self.path)
        except OSError:
            self._stamp, self._setting = None, None
            return None
        stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
        if stamp != self._stamp:
            self._stamp = stamp
            self._setting = self._read()
        return self._setting

    def _read(self) -> MirrorSetting | None:
        try:
            document = orjson.loads(self.path.read_bytes())
            return None if document == {} else MirrorSetting.model_validate(document)
        except (OSError, orjson.JSONDecodeError, ValidationError) as exc:
            logger.warning("ignoring the mirror file %s: %s", self.path, exc)
            return None
