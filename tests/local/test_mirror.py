"""The local mirror file, as the servers read it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlcanary.local.mirror import LocalMirror
from mlcanary.rollout.mirror import MirrorTarget, MirrorUnavailableError
from mlcanary.serving.mirror_file import MirrorFile, MirrorSetting

TARGET = MirrorTarget(stable="v1", canary="v2", backend="http://127.0.0.1:3001", fraction=0.5)


def _read(path: Path) -> MirrorSetting | None:
    return MirrorFile(path, every_s=0).current()


def test_the_servers_read_what_the_mirror_sets_and_nothing_once_it_stops(tmp_path: Path) -> None:
    mirror = LocalMirror(tmp_path / "shadow")
    mirror.set("digits", TARGET)
    assert _read(mirror.path("digits")) == MirrorSetting(
        stable="v1", canary="v2", url="http://127.0.0.1:3001", fraction=0.5
    )
    mirror.set("digits", None)
    assert mirror.path("digits").read_bytes() == b"{}"
    assert _read(mirror.path("digits")) is None
    assert [p.name for p in mirror.directory.iterdir()] == ["digits.json"]


def test_setting_the_same_target_again_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    mirror = LocalMirror(tmp_path)
    mirror.set("digits", TARGET)
    before = mirror.path("digits").stat()
    mirror.set("digits", TARGET)
    after = mirror.path("digits").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_directory_that_cannot_be_written_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "shadow"
    blocker.write_text("a file where the directory should be")
    with pytest.raises(MirrorUnavailableError, match="cannot write"):
        LocalMirror(blocker).set("digits", TARGET)


def test_a_backend_that_is_not_a_url_is_reported() -> None:
    target = TARGET.model_copy(update={"backend": "digits-v2"})
    with pytest.raises(MirrorUnavailableError, match="cannot be copied to"):
        LocalMirror(Path("unused")).set("digits", target)
