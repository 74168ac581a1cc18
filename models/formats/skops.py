"""scikit-learn estimators and Pipelines in the skops format.

Why skops: a pickle runs whatever code its file names; skops rebuilds only types it trusts and
lists every other type a file names, before loading anything. Trusted here: skops' own default
set (scikit-learn's estimators, numpy, builtins) and two scikit-learn internals it leaves out
(the fitted trees of forests and of histogram gradient boosting). Any other type is refused by
name, unless the user vouched for it with ``--trust TYPE`` when the version was registered; the
vouched types are recorded in the version's metadata and trusted for that artifact only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import skops.io as sio

from mlcanary.models.formats.base import (
    Described,
    LoadContext,
    ReadContext,
    SaveContext,
    SavedArtifact,
    UntrustedArtifactError,
)
from mlcanary.models.schema import Batch, ColumnsSchema, TensorSchema
from mlcanary.models.task import ClassificationOutput, RawOutput, Task

__all__ = ["DEFAULT_TRUSTED", "FORMAT", "SkopsFormat", "describe_estimator", "read_estimator"]

ARTIFACT_NAME = "model.skops"
DEFAULT_TRUSTED = frozenset(
    {
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    }
)


def read_estimator(path: Path, trusted: Sequence[str] = ()) -> Any:
    """The estimator in a skops file; every type outside what is trusted is refused by name."""
    untrusted = sio.get_untrusted_types(file=path)
    refused = sorted(set(untrusted) - DEFAULT_TRUSTED - set(trusted))
    if refused:
        raise UntrustedArtifactError(
            f"model artifact {path} names types that are not trusted: {', '.join(refused)}; "
            "if you know them, name each with --trust TYPE"
        )
    return sio.load(path, trusted=untrusted)


def describe_estimator(estimator: Any) -> Described:
    """What an estimator says about itself: its task, classes, and input where it knows it."""
    from sklearn.base import is_classifier, is_regressor

    task = Task.CLASSIFICATION if is_classifier(estimator) else None
    if task is None and is_regressor(estimator):
        task = Task.REGRESSION
    classes = getattr(estimator, "classes_", None)
    schema: TensorSchema | ColumnsSchema | None = None
    if getattr(estimator, "feature_names_in_", None) is None:
        features = getattr(estimator, "n_features_in_", None)
        if isinstance(features, int):
            schema = TensorSchema(shape=(features,), dtype="float64")
    return Described(
        task=task,
        classes=tuple(np.asarray(classes).tolist()) if classes is not None else None,
        probabilities=hasattr(estimator, "predict_proba"),
        schema=schema,
    )


class _EstimatorRunner:
    """One call per batch: a classifier with probabilities answers ``predict_proba`` alone, its
    labels being the most probable classes (what ``predict`` answers for scikit-learn's
    classifiers, which decide by the same scores); calling both would double the model's cost."""

    def __init__(self, estimator: Any, context: LoadContext) -> None:
        self._estimator = estimator
        self._columns = context.schema.names if isinstance(context.schema, ColumnsSchema) else None
        output = context.output
        self._classifier = isinstance(output, ClassificationOutput)
        self._proba = isinstance(output, ClassificationOutput) and output.probabilities

    @property
    def device(self) -> str:
        return "cpu"

    def run(self, batch: Batch) -> RawOutput:
        features: Any = batch
        if isinstance(batch, dict):
            import pandas as pd

            features = pd.DataFrame({name: batch[name] for name in self._columns or batch})
        if self._proba:
            return RawOutput(probabilities=np.asarray(self._estimator.predict_proba(features)))
        predicted = np.asarray(self._estimator.predict(features))
        return RawOutput(labels=predicted) if self._classifier else RawOutput(values=predicted)


class SkopsFormat:
    name = "skops"
    framework = "sklearn"

    def accepts(self, model: Any) -> bool:
        try:
            from sklearn.base import BaseEstimator
        except ImportError:
            return False
        return isinstance(model, BaseEstimator)

    def describe(self, model: Any, example: Batch | None) -> Described:
        return describe_estimator(model)

    def read(self, path: Path, context: ReadContext) -> Any:
        return read_estimator(path, context.trusted)

    def save(self, model: Any, directory: Path, context: SaveContext) -> SavedArtifact:
        path = directory / ARTIFACT_NAME
        sio.dump(model, path)
        return SavedArtifact(path, {"trusted": sorted(context.trusted)})

    def load(
        self, path: Path, options: Mapping[str, Any], context: LoadContext
    ) -> _EstimatorRunner:
        estimator = read_estimator(path, options.get("trusted", ()))
        return _EstimatorRunner(estimator, context)


FORMAT = SkopsFormat()
