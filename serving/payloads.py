"""Parsing and validating request bodies, fast for good input and precise for bad input.

Well-formed batches go through one numpy conversion; only when that conversion shows something
wrong does the slow path walk the rows to name the first bad field. Strings that look like
numbers and booleans are refused: silently coercing them would hide client bugs. JSON cannot
carry NaN or infinities (orjson refuses the literals and overflowing numbers), so every number
that gets through is finite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from mlcanary.models.predictor import FloatArray
from mlcanary.serving.errors import ClientError

__all__ = ["FeedbackRequest", "parse_feedback", "parse_predict"]

_PREDICT_FIELDS = frozenset({"instances"})
_FEEDBACK_FIELDS = frozenset({"token", "label"})
_MAX_TOKEN_CHARS = 512


def _load_object(body: bytes, allowed: frozenset[str]) -> dict[str, Any]:
    if not body.strip():
        raise ClientError(400, "empty_body", "the request body is empty; send a JSON object")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ClientError(
            400, "invalid_json", f"the request body is not valid JSON: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise ClientError(422, "not_an_object", "the request body must be a JSON object")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ClientError(
            422,
            "unknown_field",
            f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}",
            unknown[0],
        )
    missing = sorted(allowed - set(data))
    if missing:
        raise ClientError(422, "missing_field", f"missing field {missing[0]}", missing[0])
    return data


def parse_predict(body: bytes, n_features: int, max_batch: int) -> FloatArray:
    """``{"instances": [[f1, ...], ...]}``: one row or many, each with ``n_features`` numbers."""
    instances = _load_object(body, _PREDICT_FIELDS)["instances"]
    if not isinstance(instances, list) or not instances:
        raise ClientError(
            422, "invalid_instances", "instances must be a non-empty list of rows", "instances"
        )
    if len(instances) > max_batch:
        raise ClientError(
            413,
            "batch_too_large",
            f"{len(instances)} rows exceed the batch limit of {max_batch}",
            "instances",
        )
    try:
        rows = np.array(instances)
    except ValueError:
        rows = np.empty(0, dtype=object)
    # numpy turns booleans into numbers; the only place a JSON true/false can hide is a value.
    has_booleans = b"true" in body or b"false" in body
    if (
        not has_booleans
        and rows.ndim == 2
        and rows.shape[1] == n_features
        and rows.dtype.kind in "iuf"
    ):
        return rows.astype(np.float64, copy=False)
    raise _locate_row_error(instances, n_features)


def _locate_row_error(instances: list[Any], n_features: int) -> ClientError:
    for i, row in enumerate(instances):
        if not isinstance(row, list):
            return ClientError(
                422, "invalid_row", "each row must be a list of numbers", f"instances[{i}]"
            )
        if len(row) != n_features:
            return ClientError(
                422,
                "wrong_feature_count",
                f"row {i} has {len(row)} features; the model expects {n_features}",
                f"instances[{i}]",
            )
        for j, value in enumerate(row):
            if isinstance(value, bool) or not isinstance(value, int | float):
                return ClientError(
                    422,
                    "non_numeric",
                    f"instances[{i}][{j}] is {type(value).__name__} {value!r:.40}; numbers only",
                    f"instances[{i}][{j}]",
                )
    return ClientError(
        422, "invalid_instances", "instances could not be read as numbers", "instances"
    )


@dataclass(frozen=True)
class FeedbackRequest:
    token: str
    label: int


def parse_feedback(body: bytes, n_classes: int) -> FeedbackRequest:
    """``{"token": "...", "label": 3}``: the token from the prediction and the true label."""
    data = _load_object(body, _FEEDBACK_FIELDS)
    token, label = data["token"], data["label"]
    if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_CHARS:
        raise ClientError(
            422, "invalid_token", "token must be the string returned by predict", "token"
        )
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < n_classes:
        raise ClientError(
            422, "invalid_label", f"label must be an integer from 0 to {n_classes - 1}", "label"
        )
    return FeedbackRequest(token, label)
