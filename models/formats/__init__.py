"""Artifact formats, one module per framework, all behind the ArtifactFormat interface.

Only formats that cannot execute code when read are allowed: skops (with an explicit allowlist
of types) for scikit-learn, safetensors for PyTorch weights.
"""

from __future__ import annotations

from mlcanary.models.formats.base import ArtifactFormat, SavedArtifact
from mlcanary.models.formats.sklearn_skops import SkopsFormat
from mlcanary.models.formats.torch_safetensors import SafetensorsFormat

__all__ = ["ArtifactFormat", "SafetensorsFormat", "SavedArtifact", "SkopsFormat", "format_for"]

_FORMATS: dict[str, ArtifactFormat] = {"sklearn": SkopsFormat(), "torch": SafetensorsFormat()}


def format_for(framework: str) -> ArtifactFormat:
    try:
        return _FORMATS[framework]
    except KeyError:
        known = ", ".join(sorted(_FORMATS))
        raise ValueError(f"unknown framework {framework!r}; known: {known}") from None
