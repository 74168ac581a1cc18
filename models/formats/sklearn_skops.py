"""scikit-learn estimators in the skops format.

skops refuses to instantiate any type it does not trust. Its default trust covers sklearn's
estimators and numpy; the few internals it flags (fitted trees) are trusted here by name, and
anything else in a file is refused rather than trusted blindly.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import skops.io as sio

from mlcanary.models.formats.base import SavedArtifact
from mlcanary.models.predictor import FloatArray, IntArray, Predictor

__all__ = ["EXTRA_TRUSTED_TYPES", "SkopsFormat", "UntrustedArtifactError"]

ARTIFACT_NAME = "model.skops"
EXTRA_TRUSTED_TYPES = frozenset(
    {
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    }
)


class UntrustedArtifactError(RuntimeError):
    """The artifact names types outside the allowlist, so loading it could run foreign code."""


class _SklearnPredictor:
    def __init__(self, estimator: Any) -> None:
        self._estimator = estimator

    @property
    def device(self) -> str:
        return "cpu"

    def predict(self, rows: FloatArray) -> IntArray:
        return np.asarray(self._estimator.predict(rows), dtype=np.int64)


class SkopsFormat:
    framework = "sklearn"

    def save(self, model: Any, directory: Path) -> SavedArtifact:
        path = directory / ARTIFACT_NAME
        sio.dump(model, path)
        return SavedArtifact(path)

    def wrap(self, model: Any) -> Predictor:
        return _SklearnPredictor(model)

    def load(
        self, path: Path, load_options: Mapping[str, Any], device_preference: str
    ) -> Predictor:
        untrusted = sio.get_untrusted_types(file=path)
        refused = sorted(set(untrusted) - EXTRA_TRUSTED_TYPES)
        if refused:
            raise UntrustedArtifactError(
                f"model artifact {path} contains types outside the allowlist: {refused}"
            )
        return _SklearnPredictor(sio.load(path, trusted=untrusted))
