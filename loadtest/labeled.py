"""Labeled request bodies: rows whose ground truth is known, for traffic that posts feedback.

By default the digits holdout split (the reference model's). With a data file of the user's
(``--data FILE --label-column COL``: CSV, JSON lines or Parquet), the rows are shaped by the
served version's own schema, read from its ``/model`` endpoint: records with its named columns,
or tensors of its shape (a table's columns flattened in order, or one column of nested lists).
The labels are whatever the file holds: class labels, numbers, lists of numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
from pydantic import TypeAdapter

from mlcanary.models.data import features_and_labels, read_table
from mlcanary.models.schema import ColumnsSchema, InputSchema, TensorSchema

__all__ = ["LabeledRow", "digits_rows", "rows_from_file", "rows_from_table"]

_SCHEMA: TypeAdapter[TensorSchema | ColumnsSchema] = TypeAdapter(InputSchema)


@dataclass(frozen=True)
class LabeledRow:
    body: str  # a /predict request body with one row
    label: Any


def digits_rows() -> list[LabeledRow]:
    from mlcanary.models.reference.dataset import digits_split

    split = digits_split()
    return [
        LabeledRow(orjson.dumps({"instances": [row.tolist()]}).decode(), int(label))
        for row, label in zip(split.x_holdout, split.y_holdout, strict=True)
    ]


def _plain(value: Any) -> Any:
    """A table cell as JSON: numpy scalars as numbers, NaN as null (a missing value)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def rows_from_table(
    table: Any, label_column: str, schema: TensorSchema | ColumnsSchema
) -> list[LabeledRow]:
    features, labels = features_and_labels(table, label_column)
    truth = [_plain(label) if not isinstance(label, list) else label for label in labels.tolist()]
    if isinstance(schema, ColumnsSchema):
        missing = [name for name in schema.names if name not in features.columns]
        if missing:
            raise ValueError(f"the data lacks the model's columns {missing}")
        records = features[schema.names].astype(object).to_dict(orient="records")
        instances = [{k: _plain(v) for k, v in record.items()} for record in records]
    else:
        instances = schema.to_batch(features).tolist()
    return [
        LabeledRow(orjson.dumps({"instances": [row]}).decode(), label)
        for row, label in zip(instances, truth, strict=True)
    ]


def rows_from_file(path: Path, label_column: str, host: str) -> list[LabeledRow]:
    """The file's rows shaped for the version served at ``host`` (its ``/model`` schema)."""
    answer = httpx.get(f"{host.rstrip('/')}/model", timeout=10, trust_env=False)
    answer.raise_for_status()
    schema = _SCHEMA.validate_python(answer.json()["schema"])
    rows = rows_from_table(read_table(path), label_column, schema)
    if not rows:
        raise ValueError(f"{path} holds no rows")
    return rows
