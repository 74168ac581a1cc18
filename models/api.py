"""Registering a model version: from Python (`register`) or from a file made elsewhere
(`import_artifact`), whatever the model is.

Why these two doors and one path behind them: a notebook or a training script holds the model
in memory; a CI job or a colleague hands over a file. Both end the same way, which is also how
the bundled digits versions are registered: the format comes from the object (or the file), the
task and classes from the model where it says them, the input schema from an example of the
real input, and the holdout score, if holdout data is given, from the artifact loaded back as
serving will load it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlcanary.models.formats import format_for_file, format_for_model, format_named
from mlcanary.models.formats.base import (
    ArtifactFormat,
    Described,
    FormatError,
    ReadContext,
    SaveContext,
)
from mlcanary.models.registry import ModelRef, ModelVersion, Predictor, create_version
from mlcanary.models.schema import Batch, ColumnsSchema, TensorSchema, schema_from_example
from mlcanary.models.task import ClassificationOutput, RegressionOutput, Task

__all__ = ["RegistrationError", "import_artifact", "register"]

_SCORE_CHUNK = 1024  # rows per model call when scoring the holdout set


class RegistrationError(ValueError):
    """What registration needs and was not given, said in terms of its arguments."""


def _float_dtype(
    schema: TensorSchema | ColumnsSchema, float_dtype: str | None
) -> TensorSchema | ColumnsSchema:
    """The schema with the model's own float dtype: a float32 network takes no float64 value
    that would overflow float32."""
    if float_dtype is None:
        return schema
    if isinstance(schema, TensorSchema):
        if schema.dtype.startswith("float"):
            return schema.model_copy(update={"dtype": float_dtype})
        return schema
    columns = tuple(
        c.model_copy(update={"dtype": float_dtype}) if c.dtype.startswith("float") else c
        for c in schema.columns
    )
    return schema.model_copy(update={"columns": columns})


def _output(
    task: Task, described: Described, classes: Sequence[Any] | None, holdout_y: Any
) -> ClassificationOutput | RegressionOutput:
    if task is Task.REGRESSION:
        outputs = described.outputs
        if holdout_y is not None:
            labels = np.asarray(holdout_y)
            outputs = 1 if labels.ndim == 1 else int(labels.shape[1])
        return RegressionOutput(outputs=outputs or 1)
    chosen = tuple(classes) if classes is not None else described.classes
    if chosen is None:
        raise RegistrationError("the model does not name its classes: give classes=[...]")
    if described.classes is not None and len(described.classes) != len(chosen):
        raise RegistrationError(
            f"classes has {len(chosen)} labels; the model has {len(described.classes)} classes"
        )
    return ClassificationOutput(
        classes=tuple(np.asarray(chosen).tolist()), probabilities=described.probabilities
    )


def _scorer(schema: TensorSchema | ColumnsSchema, holdout: tuple[Any, Any] | None) -> Any:
    def score(predictor: Predictor) -> dict[str, float]:
        if holdout is None:
            return {}
        features, labels = holdout
        batch = schema.to_batch(features)
        rows = len(labels)
        predicted: list[Any] = []
        for start in range(0, rows, _SCORE_CHUNK):
            stop = min(start + _SCORE_CHUNK, rows)
            chunk: Batch = (
                {name: values[start:stop] for name, values in batch.items()}
                if isinstance(batch, dict)
                else batch[start:stop]
            )
            predicted += predictor.predict(chunk).values
        truth = np.asarray(labels).tolist()
        if isinstance(predictor.version.output, ClassificationOutput):
            correct = sum(p == t for p, t in zip(predicted, truth, strict=True))
            return {"accuracy": correct / rows}
        difference = np.asarray(predicted, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
        return {
            "mae": float(np.mean(np.abs(difference))),
            "rmse": math.sqrt(float(np.mean(difference**2))),
        }

    return score


def _register(
    model: Any,
    artifact_format: ArtifactFormat,
    ref: ModelRef,
    *,
    task: str | Task | None,
    example: Any,
    schema: TensorSchema | ColumnsSchema | None,
    holdout: tuple[Any, Any] | None,
    classes: Sequence[Any] | None,
    trust: Sequence[str],
    architecture: str | None,
    config: Mapping[str, Any] | None,
    role: str,
    description: str,
) -> ModelVersion:
    guessed = schema_from_example(example) if example is not None else None
    first = schema or guessed
    batch = first.to_batch(example) if first is not None and example is not None else None
    described = artifact_format.describe(model, batch)
    # What the model itself says of its input (an ONNX graph, a program, an estimator fitted on
    # an array) wins over what an example's table looks like; a schema given outright wins all.
    chosen = schema or described.schema or guessed
    if chosen is None:
        raise RegistrationError(
            "the model does not say what it takes: give example= (rows of its input) or schema="
        )
    chosen = _float_dtype(chosen, described.float_dtype)
    if example is not None:
        batch = chosen.to_batch(example)
    if task is None and described.task is None:
        raise RegistrationError(
            f"state task='classification' or 'regression' for a {artifact_format.framework} model"
        )
    resolved = Task(task) if task is not None else described.task
    assert resolved is not None
    if described.task is not None and resolved is not described.task:
        raise RegistrationError(
            f"task={resolved.value!r}, but the model is a {described.task.value} model"
        )
    output = _output(resolved, described, classes, holdout[1] if holdout else None)
    context = SaveContext(
        schema=chosen,
        output=output,
        example=batch,
        trusted=tuple(trust),
        architecture=architecture,
        config=dict(config or {}),
    )
    return create_version(
        ref,
        artifact_format.name,
        lambda directory: artifact_format.save(model, directory, context),
        schema=chosen,
        output=output,
        score=_scorer(chosen, holdout),
        role=role,
        description=description,
    )


def register(
    model: Any,
    *,
    name: str,
    version: str,
    task: str | Task | None = None,
    example: Any = None,
    holdout: tuple[Any, Any] | None = None,
    classes: Sequence[Any] | None = None,
    schema: TensorSchema | ColumnsSchema | None = None,
    format: str | None = None,
    trust: Sequence[str] = (),
    architecture: str | None = None,
    config: Mapping[str, Any] | None = None,
    role: str = "",
    description: str = "",
) -> ModelVersion:
    """Register an in-memory model as ``name:version``.

    ``model``: a scikit-learn estimator or Pipeline (saved with skops, or ``format="onnx"``), a
    ``torch.nn.Module`` (exported with ``torch.export``, or ``format="safetensors"`` with its
    class), a ``torch.export`` program or an ONNX ``ModelProto``. ``task`` is inferred from a
    scikit-learn estimator or a classifying ONNX graph, and must be stated otherwise.
    ``example``: rows of the real input, a numpy array or a pandas DataFrame (names and dtypes,
    strings and categoricals too), which gives the input schema. ``holdout=(X, y)``: data
    scored and recorded (accuracy; MAE and RMSE for regression). ``classes``: the class labels,
    in the order of the model's outputs, for a model that does not name them.
    """
    chosen = format_named(format) if format is not None else format_for_model(model)
    return _register(
        model,
        chosen,
        ModelRef(name, version),
        task=task,
        example=example,
        schema=schema,
        holdout=holdout,
        classes=classes,
        trust=trust,
        architecture=architecture,
        config=config,
        role=role,
        description=description,
    )


def import_artifact(
    path: Path,
    *,
    name: str,
    version: str,
    format: str | None = None,
    task: str | Task | None = None,
    example: Any = None,
    schema: TensorSchema | ColumnsSchema | None = None,
    holdout: tuple[Any, Any] | None = None,
    classes: Sequence[Any] | None = None,
    trust: Sequence[str] = (),
    architecture: str | None = None,
    config: Mapping[str, Any] | None = None,
    role: str = "",
    description: str = "",
) -> ModelVersion:
    """Register an artifact made elsewhere: a skops file, an ONNX graph, a ``torch.export``
    ``.pt2`` archive, or a safetensors ``state_dict`` with ``architecture`` and ``config``. It is
    read without running code from it, then registered as `register` does."""
    chosen = format_named(format) if format is not None else format_for_file(path)
    reading = ReadContext(
        trusted=tuple(trust), architecture=architecture, config=dict(config or {})
    )
    try:
        model = chosen.read(path, reading)
    except OSError as exc:
        raise FormatError(f"cannot read {path}: {exc.strerror or exc}") from None
    return _register(
        model,
        chosen,
        ModelRef(name, version),
        task=task,
        example=example,
        schema=schema,
        holdout=holdout,
        classes=classes,
        trust=trust,
        architecture=architecture,
        config=config,
        role=role,
        description=description,
    )
