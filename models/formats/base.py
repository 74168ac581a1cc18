"""The interface every artifact format implements."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mlcanary.models.predictor import Predictor

__all__ = ["ArtifactFormat", "SavedArtifact"]


@dataclass(frozen=True)
class SavedArtifact:
    """The file written, and what the loader will need besides its bytes."""

    path: Path
    load_options: Mapping[str, Any] = field(default_factory=dict)


class ArtifactFormat(Protocol):
    framework: str

    def save(self, model: Any, directory: Path) -> SavedArtifact: ...

    def wrap(self, model: Any) -> Predictor:
        """A predictor over an in-memory model, to score it before it is saved."""
        ...

    def load(
        self, path: Path, load_options: Mapping[str, Any], device_preference: str
    ) -> Predictor: ...
