"""What a model version predicts, and how a ground-truth label is judged against it.

Why the task is recorded with the version: it decides everything downstream of the model call.
A classifier answers with its own class labels (integers, strings), with probabilities when it
has them, and a label is right or wrong; a regressor answers with one or several numbers, and a
label gives an absolute and a squared error. The feedback body, the quality metrics the service
exports and the rollout's quality check (accuracy, or error) all follow from it.

Frameworks disagree on what a model call returns (scikit-learn class labels, a torch network's
logits, an ONNX graph's label and probability outputs); each artifact format reduces its model's
answer to a `RawOutput`, and `OutputSpec.interpret` turns that into the same `Predictions`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mlcanary.models.errors import InputError

__all__ = [
    "ClassificationOutput",
    "Judgement",
    "OutputSpec",
    "Predictions",
    "RawOutput",
    "RegressionOutput",
    "Task",
]

ClassLabel = int | str


class Task(StrEnum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"


@dataclass(frozen=True)
class RawOutput:
    """A model call's answer as its framework gives it; a format fills what its model has."""

    labels: npt.NDArray[Any] | None = None  # predicted classes, as the model names them
    probabilities: npt.NDArray[Any] | None = None  # (rows, classes), in the classes' order
    scores: npt.NDArray[Any] | None = None  # (rows, classes), unnormalised (logits)
    values: npt.NDArray[Any] | None = None  # regression: (rows,) or (rows, outputs)


@dataclass(frozen=True)
class Predictions:
    """One model call's predictions, one per row: a class label, a number, or a list of numbers
    (several outputs); class probabilities, in the order of the version's classes, when known."""

    values: list[Any]
    probabilities: npt.NDArray[np.float64] | None = None

    def rows(self, start: int, stop: int) -> Predictions:
        probabilities = self.probabilities[start:stop] if self.probabilities is not None else None
        return Predictions(self.values[start:stop], probabilities)


@dataclass(frozen=True)
class Judgement:
    """A prediction against its true label: right or wrong, or by how much."""

    correct: bool | None = None
    absolute_error: float | None = None
    squared_error: float | None = None


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _softmax(scores: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    shifted = scores.astype(np.float64) - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True), dtype=np.float64)


class ClassificationOutput(_Frozen):
    """The version's classes in the model's own order (its probability columns), and whether it
    gives probabilities."""

    task: Literal["classification"] = "classification"
    classes: tuple[ClassLabel, ...] = Field(min_length=2)
    probabilities: bool = False

    @field_validator("classes")
    @classmethod
    def _one_kind(cls, value: tuple[ClassLabel, ...]) -> tuple[ClassLabel, ...]:
        if any(isinstance(c, bool) for c in value):
            raise ValueError("class labels are integers or strings, not booleans")
        if len({type(c) for c in value}) > 1:
            raise ValueError("class labels must all be integers or all strings")
        if len(set(value)) != len(value):
            raise ValueError("class labels repeat")
        return value

    def interpret(self, raw: RawOutput) -> Predictions:
        probabilities = raw.probabilities
        if raw.scores is not None:
            probabilities = _softmax(raw.scores)
        if raw.labels is not None:
            values = raw.labels.tolist()
        elif probabilities is not None:
            values = [self.classes[i] for i in np.argmax(probabilities, axis=1).tolist()]
        else:
            raise ValueError("the model gave neither labels nor class scores")
        if probabilities is not None:
            # Row slices of a C-ordered array stay contiguous, which orjson writes natively.
            probabilities = np.ascontiguousarray(probabilities, dtype=np.float64)
        return Predictions(values, probabilities)

    def parse_label(self, label: Any) -> ClassLabel:
        known = (
            isinstance(label, int | str) and not isinstance(label, bool) and label in self.classes
        )
        if not known:
            shown = ", ".join(repr(c) for c in self.classes[:12])
            more = ", ..." if len(self.classes) > 12 else ""
            raise InputError(
                "invalid_label", f"label must be one of the model's classes: {shown}{more}", "label"
            )
        return label  # type: ignore[no-any-return]

    def judge(self, predicted: Any, label: ClassLabel) -> Judgement:
        return Judgement(correct=predicted == label)

    def json_schema(self) -> dict[str, Any]:
        return {"enum": list(self.classes)}


class RegressionOutput(_Frozen):
    """How many numbers the model predicts per row."""

    task: Literal["regression"] = "regression"
    outputs: int = Field(default=1, ge=1, le=1024)

    def interpret(self, raw: RawOutput) -> Predictions:
        if raw.values is None:
            raise ValueError("the regression model gave no values")
        values = np.asarray(raw.values, dtype=np.float64)
        rows = values.shape[0]
        values = values.reshape(rows) if self.outputs == 1 else values.reshape(rows, self.outputs)
        return Predictions(values.tolist())

    def parse_label(self, label: Any) -> float | list[float]:
        def number(value: Any, field: str) -> float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError("invalid_label", f"{field} must be a number", field)
            if not math.isfinite(value):
                raise InputError("invalid_label", f"{field} must be finite", field)
            return float(value)

        if self.outputs == 1:
            return number(label, "label")
        if not isinstance(label, list) or len(label) != self.outputs:
            raise InputError(
                "invalid_label", f"label must be a list of {self.outputs} numbers", "label"
            )
        return [number(v, f"label[{i}]") for i, v in enumerate(label)]

    def judge(self, predicted: Any, label: float | list[float]) -> Judgement:
        """Several outputs are averaged: the row's error is the mean over its outputs."""
        difference = np.asarray(predicted, dtype=np.float64) - np.asarray(label, dtype=np.float64)
        return Judgement(
            absolute_error=float(np.mean(np.abs(difference))),
            squared_error=float(np.mean(difference**2)),
        )

    def json_schema(self) -> dict[str, Any]:
        if self.outputs == 1:
            return {"type": "number"}
        return {
            "type": "array",
            "items": {"type": "number"},
            "minItems": self.outputs,
            "maxItems": self.outputs,
        }


OutputSpec = Annotated[ClassificationOutput | RegressionOutput, Field(discriminator="task")]
