"""SHA-256 digests of artifacts, recorded at save time and checked before any bytes are parsed.

Checking before parsing matters: a deserializer is the attack surface, so a tampered or
truncated file must be refused before it reaches one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["ArtifactIntegrityError", "file_sha256", "verify_sha256"]

_CHUNK = 1 << 20


class ArtifactIntegrityError(RuntimeError):
    """An artifact is missing, or its bytes are not the ones recorded when it was saved."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    if not path.is_file():
        raise ArtifactIntegrityError(f"model artifact {path} is missing")
    actual = file_sha256(path)
    if actual != expected:
        raise ArtifactIntegrityError(
            f"model artifact {path} failed its integrity check: sha256 is {actual}, "
            f"recorded {expected}; the file was modified or truncated, refusing to load it"
        )
