"""Labeled request bodies from the holdout split, for traffic whose ground truth is known."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from mlcanary.models.reference.dataset import digits_split

__all__ = ["LabeledRow", "labeled_rows"]


@dataclass(frozen=True)
class LabeledRow:
    body: str
    label: int


def labeled_rows() -> list[LabeledRow]:
    split = digits_split()
    return [
        LabeledRow(orjson.dumps({"instances": [row.tolist()]}).decode(), int(label))
        for row, label in zip(split.x_holdout, split.y_holdout, strict=True)
    ]
