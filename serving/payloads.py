"""Parsing request bodies into what the version takes, fast for good input and precise for bad.

The version's schema (`mlcanary.models.schema`) decides what ``instances`` may hold and its
output spec (`mlcanary.models.task`) what a feedback ``label`` may be; every refusal is a
`ClientError` naming the field. JSON cannot carry NaN or infinities (orjson refuses the literals
and overflowing numbers), so every number that gets through is finite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from mlcanary.models.errors import InputError
from mlcanary.models.schema import Batch, ColumnsSchema, TensorSchema
from mlcanary.models.task import ClassificationOutput, RegressionOutput
from mlcanary.serving.errors import ClientError

__all__ = ["FeedbackRequest", "parse_feedback", "parse_predict"]

_PREDICT_FIELDS = frozenset({"instances"})
_FEEDBACK_FIELDS = frozenset({"token", "label"})
_MAX_TOKEN_CHARS = 2048


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


def _refused(error: InputError) -> ClientError:
    return ClientError(422, error.code, error.message, error.field)


def parse_predict(body: bytes, schema: TensorSchema | ColumnsSchema, max_batch: int) -> Batch:
    """``{"instances": [row, ...]}``: rows of the version's tensor shape, or records with its
    named columns."""
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
        if isinstance(schema, TensorSchema):
            # Only a JSON true/false can hide among numbers as 1/0: the raw bytes tell cheaply.
            return schema.parse(instances, booleans_seen=b"true" in body or b"false" in body)
        return schema.parse(instances)
    except InputError as error:
        raise _refused(error) from None


@dataclass(frozen=True)
class FeedbackRequest:
    token: str
    label: Any  # a class label, or a number (or list of numbers) for regression


def parse_feedback(body: bytes, output: ClassificationOutput | RegressionOutput) -> FeedbackRequest:
    """``{"token": "...", "label": ...}``: the token from the prediction and the true label, a
    class of the model or a number (a list of numbers for several outputs)."""
    data = _load_object(body, _FEEDBACK_FIELDS)
    token = data["token"]
    if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_CHARS:
        raise ClientError(
            422, "invalid_token", "token must be the string returned by predict", "token"
        )
    try:
        return FeedbackRequest(token, output.parse_label(data["label"]))
    except InputError as error:
        raise _refused(error) from None
