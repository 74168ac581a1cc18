from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mlcanary.models.digest import ArtifactIntegrityError, file_sha256, verify_sha256


def test_digest_matches_hashlib(tmp_path: Path) -> None:
    data = b"weights" * 100_000
    path = tmp_path / "model.bin"
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    verify_sha256(path, hashlib.sha256(data).hexdigest())


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[:-1], id="truncated"),
        pytest.param(lambda b: b[:10] + bytes([b[10] ^ 1]) + b[11:], id="one-bit-flipped"),
        pytest.param(lambda b: b + b"\0", id="appended"),
    ],
)
def test_damaged_artifact_is_refused_naming_the_file(tmp_path: Path, damage: object) -> None:
    data = bytes(range(256)) * 10
    path = tmp_path / "model.skops"
    path.write_bytes(damage(data))  # type: ignore[operator]
    with pytest.raises(ArtifactIntegrityError, match=r"model\.skops.*integrity"):
        verify_sha256(path, hashlib.sha256(data).hexdigest())


def test_missing_artifact_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactIntegrityError, match="missing"):
        verify_sha256(tmp_path / "absent.safetensors", "0" * 64)
